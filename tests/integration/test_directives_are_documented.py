"""Every directive of the module's command table, as httpd itself lists it
(mod_info's page of the module), has its section in docs/directives.md, and
every section there names a directive of the table. The defaults, ranges and
contexts the sections give are compared with the directives' table
(directive_specs.h) by tests/unit/test_directive_specs.cc."""

import html
import os
import re

from harness.httpd_env import DEBIAN_MODULES_DIR, REPO_DIR, compiled_in_modules


def documented_directives():
    text = open(os.path.join(REPO_DIR, "docs", "directives.md")).read()
    return {html.unescape(name) for name in re.findall(r"^## (.+) Directive$", text, re.M)}


def served_directives(page):
    """The directives of mod_deploy's entry on mod_info's page."""
    entry = re.search(r"Module Name:.*?mod_deploy\.cc.*?(?=Module Name:|$)", page, re.S)
    assert entry, "mod_info does not list mod_deploy"
    names = {html.unescape(n) for n in re.findall(r"<dd><tt>(\S+) - <i>", entry.group(0))}
    # httpd names a section by its opening "<DeployTarget"; the doc by "<DeployTarget>".
    return {n + ">" if n.startswith("<") and not n.endswith(">") else n for n in names}


def test_every_directive_of_the_command_table_is_documented(make_httpd):
    load = ([] if "mod_info.c" in compiled_in_modules()
            else [f"LoadModule info_module {DEBIAN_MODULES_DIR}/mod_info.so"])
    env = make_httpd(server_config="\n".join(load + [
        "<Location /server-info>", "    SetHandler server-info", "</Location>"]))
    page = env.get("/server-info?mod_deploy.cc")
    assert page.status == 200, page.body
    served = served_directives(page.body.decode())
    assert "DeployHistory" in served and "<DeployTarget>" in served, sorted(served)
    documented = documented_directives()
    assert served - documented == set(), "in the command table, not in docs/directives.md"
    assert documented - served == set(), "in docs/directives.md, not in the command table"
