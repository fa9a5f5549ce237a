"""fluxrm.config: reading configuration files and applying --conf overrides."""

import errno
import os

import pytest

from fluxrm.config import ConfigError, apply_overrides, load_config


def write(path, text):
    path.write_text(text)
    return path


def test_one_toml_file(tmp_path):
    f = write(tmp_path / "system.toml",
              '[bootstrap]\ndefault_port = 8050\nhosts = [{host = "n[0-3]"}]\n')
    assert load_config(f) == {"bootstrap": {"default_port": 8050,
                                            "hosts": [{"host": "n[0-3]"}]}}
    assert load_config(str(f)) == load_config(f)


def test_a_file_without_toml_suffix_is_toml(tmp_path):
    f = write(tmp_path / "conf", "a = 1\n")
    assert load_config(f) == {"a": 1}


def test_json_file(tmp_path):
    f = write(tmp_path / "c.json", '{"bootstrap": {"default_port": 1}}')
    assert load_config(f) == {"bootstrap": {"default_port": 1}}


@pytest.mark.parametrize("text, words", [
    ('{"a": 1,}', ["c.json", "line 1", "column"]),
    ('[1, 2]', ["c.json", "top level must be a JSON object", "list"]),
    ('{"a": 1, "a": 2}', ["c.json", "'a' appears twice"]),
    (b'{"a": "\xff"}', ["c.json", "UTF-8"]),
])
def test_bad_json(tmp_path, text, words):
    f = tmp_path / "c.json"
    f.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError) as info:
        load_config(f)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_directory_merges_tables_in_name_order(tmp_path):
    write(tmp_path / "b.toml", '[bootstrap]\ndefault_bind = "tcp://*:%p"\n')
    write(tmp_path / "a.toml", "[bootstrap]\ndefault_port = 8050\n[tbon]\ntopo = 'kary:2'\n")
    write(tmp_path / "c.toml", '[bootstrap.extra]\nx = 1\n')
    write(tmp_path / "ignored.json", '{"bootstrap": {"default_port": 1}}')
    write(tmp_path / "notes.txt", "not toml at all [")
    assert load_config(tmp_path) == {
        "bootstrap": {"default_port": 8050, "default_bind": "tcp://*:%p",
                      "extra": {"x": 1}},
        "tbon": {"topo": "kary:2"},
    }


def test_empty_directory(tmp_path):
    assert load_config(tmp_path) == {}


@pytest.mark.parametrize("first, second, key", [
    ("[bootstrap]\ndefault_port = 1\n", "[bootstrap]\ndefault_port = 2\n",
     "bootstrap.default_port"),
    ("a = 1\n", "[a]\nb = 2\n", "a"),
    ("[a]\nb = 2\n", "a = 1\n", "a"),
    ("[x.y]\nz = [1]\n", "x = {y = {z = [2]}}\n", "x.y.z"),
])
def test_key_defined_in_two_files(tmp_path, first, second, key):
    write(tmp_path / "10-first.toml", first)
    write(tmp_path / "20-second.toml", second)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    message = str(info.value)
    assert f"'{key}'" in message
    assert "10-first.toml" in message and "20-second.toml" in message


def test_duplicate_key_names_the_file_that_defined_it(tmp_path):
    # the table came from a.toml, the key inside it from b.toml
    write(tmp_path / "a.toml", "[t]\nx = 1\n")
    write(tmp_path / "b.toml", "[t]\ny = 1\n")
    write(tmp_path / "c.toml", "[t]\ny = 2\n")
    with pytest.raises(ConfigError, match=r"c\.toml: 't\.y' is already defined in .*b\.toml"):
        load_config(tmp_path)


@pytest.mark.parametrize("text, where", [
    ("[bootstrap]\ndefault_port 8050\n", "line 2"),
    ("a = 1\n[a]\n", "line 2"),
    ("a = 1\nb = ", "line 2"),
    ("a = 1\nb = \n", "line 2"),
])
def test_toml_syntax_errors_give_the_line(tmp_path, text, where):
    write(tmp_path / "bad.toml", text)
    for path in (tmp_path, tmp_path / "bad.toml"):
        with pytest.raises(ConfigError) as info:
            load_config(path)
        message = str(info.value)
        assert "bad.toml" in message and where in message and "\n" not in message


def test_toml_not_utf8(tmp_path):
    (tmp_path / "x.toml").write_bytes(b'a = "\xff"\n')
    with pytest.raises(ConfigError, match=r"x\.toml: not UTF-8"):
        load_config(tmp_path / "x.toml")


def test_missing_path_is_an_oserror_naming_it(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(OSError) as info:
        load_config(missing)
    assert info.value.errno == errno.ENOENT
    assert str(missing) in info.value.strerror


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    f = write(tmp_path / "x.toml", "a = 1\n")
    f.chmod(0)
    with pytest.raises(OSError) as info:
        load_config(f)
    assert info.value.errno == errno.EACCES and "x.toml" in info.value.strerror


def test_a_toml_named_directory_inside_the_config_dir(tmp_path):
    (tmp_path / "sub.toml").mkdir()
    with pytest.raises(OSError) as info:
        load_config(tmp_path)
    assert "sub.toml" in info.value.strerror


@pytest.mark.parametrize("word, value", [
    ("x=8050", 8050),
    ("x=true", True),
    ("x=1.5", 1.5),
    ('x="quoted text"', "quoted text"),
    ("x=plain text", "plain text"),
    ("x=tcp://*:%p", "tcp://*:%p"),
    ("x=", ""),
    ("x=[1, 2]", [1, 2]),
    ("x={a = 1}", {"a": 1}),
    ("x=a=b", "a=b"),
    ("x=1\ny = 2", "1\ny = 2"),  # never more than one value
    ("x=1 # comment", 1),
    (" x = 3", 3),
])
def test_override_values(word, value):
    assert apply_overrides({}, [word]) == {"x": value}


def test_overrides_make_tables_and_replace_values():
    config = {"bootstrap": {"default_port": 1, "hosts": []}}
    out = apply_overrides(config, ["bootstrap.default_port=8050",
                                   "tbon.topo=kary:2", "a.b.c=1"])
    assert out is config
    assert config == {"bootstrap": {"default_port": 8050, "hosts": []},
                      "tbon": {"topo": "kary:2"}, "a": {"b": {"c": 1}}}


@pytest.mark.parametrize("config, word, match", [
    ({}, "novalue", "expected KEY=VALUE"),
    ({}, "=1", "expected KEY=VALUE"),
    ({}, "a..b=1", "not a dotted key"),
    ({}, "a.=1", "not a dotted key"),
    ({}, "a b=1", "not a dotted key"),
    ({"a": 1}, "a.b=2", r"'a' already holds a non-table value \(int\)"),
    ({"a": {"b": "s"}}, "a.b.c=2", r"'a.b' already holds a non-table value \(str\)"),
])
def test_bad_overrides(config, word, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(config, [word])
