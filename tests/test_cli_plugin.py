"""CLI plugins (spec 28): a plugin file on FLUX_CLI_PLUGINPATH adds options
to the submission commands and changes their jobspecs (seen with
--dry-run), and runs from ``apply_options(prog=...)`` too."""

import json
import os
import textwrap

import pytest

from flux.cli import plugin as cliplugin
from flux.cli.plugin import CLIPlugin, CLIPluginRegistry, PluginArgsProxy
from flux.job import JobspecV1
from conftest import run_flux

SITE_PLUGIN = textwrap.dedent('''
    """A site plugin (a test)."""
    from flux.cli.plugin import CLIPlugin


    class SitePlugin(CLIPlugin):
        """Site options: --site-color paints the job."""

        def __init__(self, prog):
            super().__init__(prog, prefix="site")
            self.add_option("--color", metavar="NAME", help="paint the job")
            self.add_option("--big", action="store_true", help="four tasks")

        def preinit(self, args):
            if args.big and self.prog in ("run", "submit"):
                args.ntasks = 4  # through the alias: site_big, ntasks as is

        def modify_jobspec(self, args, jobspec):
            if args.color is not None:
                jobspec.setattr("system.site.color", args.color)
                jobspec.setattr("system.site.prog", self.prog)

        def validate(self, jobspec):
            if jobspec.attributes["system"].get("site", {}).get("color") == "red":
                raise ValueError("red jobs are not allowed here")
''')

RIVAL_PLUGIN = textwrap.dedent('''
    from flux.cli.plugin import CLIPlugin


    class Rival(CLIPlugin):
        def __init__(self, prog):
            super().__init__(prog, prefix="site")
            self.add_option("--color", help="the same dest as SitePlugin")
            self.add_option("--shade", help="would be new")
''')


@pytest.fixture
def plugindir(tmp_path, monkeypatch):
    d = tmp_path / "plugins"
    d.mkdir()
    (d / "site.py").write_text(SITE_PLUGIN)
    monkeypatch.setenv("FLUX_CLI_PLUGINPATH", str(d))
    monkeypatch.delenv("FLUX_CLI_PLUGINPATH_OVERRIDE", raising=False)
    return d


def env_with(plugindir):
    env = dict(os.environ)
    env["FLUX_CLI_PLUGINPATH"] = str(plugindir)
    return env


# -- the commands ---------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["run", "submit"])
def test_plugin_option_changes_the_jobspec(plugindir, command):
    res = run_flux(command, "--dry-run", "--site-color=blue", "true",
                   env=env_with(plugindir))
    assert res.returncode == 0, res.stderr
    site = json.loads(res.stdout)["attributes"]["system"]["site"]
    assert site == {"color": "blue", "prog": command}


def test_without_the_option_nothing_changes(plugindir):
    res = run_flux("run", "--dry-run", "-n2", "true", env=env_with(plugindir))
    assert res.returncode == 0, res.stderr
    js = json.loads(res.stdout)
    assert "site" not in js["attributes"]["system"]
    assert js["resources"][0]["count"] == 2


def test_cli_preinit_runs_before_sizing(plugindir):
    res = run_flux("submit", "--dry-run", "--site-big", "true", env=env_with(plugindir))
    assert res.returncode == 0, res.stderr
    js = json.loads(res.stdout)
    assert js["resources"][0]["count"] == 4


def test_validate_refuses_in_one_line(plugindir):
    res = run_flux("run", "--dry-run", "--site-color", "red", "true",
                   env=env_with(plugindir))
    assert (res.returncode, res.stdout) == (1, "")
    assert res.stderr == "flux-run: red jobs are not allowed here\n"


def test_help_shows_plugin_options(plugindir):
    res = run_flux("submit", "--help", env=env_with(plugindir))
    assert res.returncode == 0
    assert "--site-color NAME" in res.stdout and "paint the job" in res.stdout


def test_batch_and_bulksubmit_get_plugin_options(plugindir, tmp_path):
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\ntrue\n")
    res = run_flux("batch", "--dry-run", "-n1", "--site-color=green", str(script),
                   env=env_with(plugindir))
    assert res.returncode == 0, res.stderr
    site = json.loads(res.stdout)["attributes"]["system"]["site"]
    assert site == {"color": "green", "prog": "batch"}
    res = run_flux("bulksubmit", "--dry-run", "--site-color=x", "echo", "{}",
                   env=env_with(plugindir), input="a\n")
    assert res.returncode == 0, res.stderr
    site = json.loads(res.stdout)["attributes"]["system"]["site"]
    assert site == {"color": "x", "prog": "bulksubmit"}


def test_without_the_plugin_the_option_is_unknown(tmp_path):
    env = dict(os.environ)
    env["FLUX_CLI_PLUGINPATH_OVERRIDE"] = ""
    res = run_flux("run", "--dry-run", "--site-color=blue", "true", env=env)
    assert res.returncode == 2
    assert "unrecognized arguments: --site-color" in res.stderr or \
        "--site-color" in res.stderr
    assert "Traceback" not in res.stderr


def test_a_broken_plugin_is_one_line(tmp_path):
    d = tmp_path / "broken"
    d.mkdir()
    (d / "bad.py").write_text("this is not python\n")
    env = dict(os.environ)
    env["FLUX_CLI_PLUGINPATH"] = str(d)
    res = run_flux("run", "--dry-run", "true", env=env)
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and "bad.py" in res.stderr
    assert "cannot load CLI plugin" in res.stderr


# -- the Python API ---------------------------------------------------------------------------

def test_apply_options_runs_the_plugins(plugindir):
    js = JobspecV1.from_submit(["true"], site_color="green")
    assert js.attributes["system"]["site"] == {"color": "green", "prog": "submit"}
    js = JobspecV1.from_command(["true"]).apply_options(prog="run", site_color="x")
    assert js.attributes["system"]["site"]["prog"] == "run"
    # preinit runs after sizing in the factories: no effect on the size
    js = JobspecV1.from_submit(["true"], site_big=True)
    assert js.resources[0]["count"] == 1
    # no plugin keyword: defaults, no change
    js = JobspecV1.from_submit(["true"])
    assert "site" not in js.attributes["system"]


def test_apply_options_unknown_keywords(plugindir):
    with pytest.raises(TypeError) as e:
        JobspecV1.from_submit(["true"], zeta=1, alpha=2)
    assert str(e.value) == "apply_options() got unexpected keyword argument(s): 'alpha', 'zeta'"
    with pytest.raises(TypeError) as e:
        JobspecV1.from_command(["true"]).apply_options(site_color="x")  # no prog
    assert str(e.value) == "apply_options() got unexpected keyword argument(s): 'site_color'"


# -- the registry --------------------------------------------------------------------------------

def test_search_path(monkeypatch, tmp_path):
    from flux.conf_builtin import conf_builtin_get

    monkeypatch.delenv("FLUX_CLI_PLUGINPATH_OVERRIDE", raising=False)
    monkeypatch.setenv("FLUX_CLI_PLUGINPATH", "/a: :/b")
    reg = CLIPluginRegistry("flux run")
    assert reg.prog == "run"
    assert reg.plugindirs == [
        "/a", "/b", os.path.join(conf_builtin_get("confdir"), "cli", "plugins"),
        os.path.join(conf_builtin_get("libexecdir"), "cli", "plugins")]
    monkeypatch.setenv("FLUX_CLI_PLUGINPATH_OVERRIDE", f"{tmp_path}::")
    assert CLIPluginRegistry("run").plugindirs == [str(tmp_path)]
    monkeypatch.setenv("FLUX_CLI_PLUGINPATH_OVERRIDE", "")
    assert CLIPluginRegistry("run").plugindirs == []


def test_first_plugin_with_a_dest_wins(plugindir):
    (plugindir / "zz_rival.py").write_text(RIVAL_PLUGIN)
    reg = CLIPluginRegistry("submit")
    assert [type(p).__name__ for p in reg.plugins] == ["SitePlugin"]
    assert [o.dest for o in reg.options] == ["site_color", "site_big"]
    assert reg.plugins[0].path == str(plugindir / "site.py")


def test_add_option_names_and_dests():
    p = CLIPlugin("flux submit", prefix="site")
    assert p.prog == "submit" and p.version is None and p.path is None
    p.add_option("--my-option")
    p.add_option("--other", dest="chosen")
    assert [(o.name, o.dest) for o in p.options] == [
        ("--site-my-option", "site_my_option"), ("--site-other", "chosen")]
    with pytest.raises(ValueError, match="^Plugins must register only long options.$"):
        p.add_option("-x")
    bare = CLIPlugin("run", prefix=None)
    bare.add_option("--plain")
    assert [(o.name, o.dest) for o in bare.options] == [("--plain", "plain")]
    assert CLIPlugin("run").prefix == "ex"


def test_args_proxy_aliases():
    from types import SimpleNamespace

    p = CLIPlugin("run", prefix="site")
    p.add_option("--my-option")
    p.add_option("--other", dest="chosen")
    ns = SimpleNamespace(site_my_option=1, chosen=2, nodes=3)
    proxy = PluginArgsProxy(ns, p._alias())
    assert (proxy.my_option, proxy.site_my_option, proxy.chosen, proxy.nodes) == (1, 1, 2, 3)
    proxy.my_option = 5
    proxy.nodes = 4
    assert (ns.site_my_option, ns.nodes) == (5, 4)
    with pytest.raises(AttributeError):
        proxy.other  # an explicit dest has no alias


def test_help_and_print(plugindir, capsys):
    reg = CLIPluginRegistry("run")
    with pytest.raises(SystemExit) as e:
        reg.print_help("--site-color")
    assert e.value.code == 0
    assert "Site options" in capsys.readouterr().out
    with pytest.raises(ValueError, match="^--help: no such option --nope$"):
        reg.print_help("--nope")
    reg.print_plugins()
    out = capsys.readouterr().out
    assert "SitePlugin" in out and "--site-color" in out
    CLIPlugin("run").help("--x")
    assert capsys.readouterr().err == "No extra documentation for option `--x` found.\n"


def test_registry_cache_follows_the_path(plugindir, monkeypatch):
    assert cliplugin.registry_for("run").plugins
    monkeypatch.setenv("FLUX_CLI_PLUGINPATH_OVERRIDE", "")
    assert cliplugin.registry_for("run").plugins == []
