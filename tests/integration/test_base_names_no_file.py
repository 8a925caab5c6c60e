"""Requests under BASE name no file (as proxied requests do not): httpd does not
look for them on disk, so <Directory> sections and .htaccess files of the
DocumentRoot do not apply there, while <Location> sections still do."""

import os

from harness.httpd_env import BASE, target_block

# An .htaccess httpd cannot parse: any request that reads it fails with 500.
BROKEN_HTACCESS = "ThisIsNotADirective at all\n"


def prepare(env):
    script = env.write_script("ok.sh", "#!/bin/sh\necho done\n")
    htdocs = env.path("htdocs")
    env.write_file("htdocs/.htaccess", BROKEN_HTACCESS)
    env.write_file("htdocs/page.txt", "a file\n")
    env.fragment = (target_block("webapp", script)
                    + f'<Directory "{htdocs}">\n    AllowOverride All\n</Directory>\n'
                    # A Location below BASE still applies: the targets route is refused.
                    + f"<Location {BASE}/targets/locked>\n    Require all denied\n</Location>\n"
                    + target_block("locked", script))
    assert os.path.isdir(htdocs)


def test_routes_skip_the_directory_walk_but_not_location_sections(make_httpd):
    env = make_httpd(setup=prepare)
    env.expect_error(r"ThisIsNotADirective")
    env.expect_error(r"AH01630: client denied by server configuration: .*targets/locked")
    # A file of the DocumentRoot: httpd reads the .htaccess on the way and fails.
    assert env.get("/page.txt").status == 500
    # BASE: no .htaccess is read; every route works.
    job = env.submit_ok("webapp")
    assert env.wait_finished(job["id"])["state"] == "succeeded"
    assert env.get(f"{BASE}/jobs/{job['id']}").status == 200
    assert env.log(job["id"]).body == b"done\n"
    assert env.get(f"{BASE}/").status == 200
    assert env.get(f"{BASE}/nope").status == 404
    # <Location> sections apply as before.
    assert env.request("POST", f"{BASE}/targets/locked", b"").status == 403
