"""The cluster tests' PostgreSQL (tests/harness/postgres.py): a server of its
own that answers, survives a kill by starting again with its data, restarts on
the same conninfo and leaves nothing behind; and the nodes' configuration."""

import os

import pytest

from harness.postgres import ThrowawayPostgres, cluster_server_config, postgres_available

pytestmark = pytest.mark.skipif(not postgres_available(), reason="no PostgreSQL server here")


def test_throwaway_postgres_answers_survives_a_kill_and_leaves_nothing():
    with ThrowawayPostgres() as pg:
        directory = pg.dir
        assert pg.conninfo.startswith("host=127.0.0.1 port=") and "dbname=deploy" in pg.conninfo
        pg.psql("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
        pg.kill()
        with pytest.raises(AssertionError):
            pg.psql("SELECT 1")
        assert pg.start() == pg.conninfo.strip()
        assert pg.psql("SELECT v FROM kept").strip() == "42"
        pg.restart()
        assert pg.psql("SELECT v FROM kept").strip() == "42"
    assert not os.path.exists(directory)


def test_each_node_names_the_store_and_its_own_name():
    config = cluster_server_config("host=127.0.0.1 port=5 dbname=deploy", "node-2", lease=5)
    assert config.splitlines() == ['DeployStore postgresql "host=127.0.0.1 port=5 dbname=deploy"',
                                   "DeployNodeName node-2", "DeployLease 5"]
