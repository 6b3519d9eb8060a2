"""Inputs that parse but exhaust or break what follows: huge integers, deep nesting, YAML alias
expansion, lone surrogates, Unicode digits, CSV line breaks and field sizes, contradictory rows."""

import time

import pytest

from embedtune_core.config.files import apply_overrides, load_file, parse_value
from embedtune_core.data import formats, records
from embedtune_core.errors import ConfigError, DataError
from embedtune_core.ranking.metrics import parse_metric
from embedtune_core.text import ascii_int, find_problem, text_key

BIG = "1" * 5000


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- the shared checks --------------------------------------------------------------------------
def test_ascii_int_takes_only_ascii_digits():
    assert ascii_int("10") == 10
    for text in ("²", "１０", "1 0", "-1", "+1", "", "1_0", "1" * 10, BIG):
        assert ascii_int(text) is None, text


def test_find_problem_walks_any_depth_without_recursion():
    deep = []
    node = deep
    for _ in range(100_000):
        node.append([])
        node = node[0]
    path, problem = find_problem({"x": deep})
    assert problem == "nested more than 64 levels deep" and path[0] == "x"
    assert find_problem({"a": ["ok", {"b": "x\udfffy"}]}) == (("a", 1, "b"), "holds a lone surrogate (\\udfff), which is not valid Unicode text")
    assert find_problem({"a": 1 << 20000})[1].startswith("holds an integer of more than")
    assert find_problem({"a": [1, "two", {"three": 3.0}]}) is None


def test_text_key_folds_unicode_forms_case_and_spacing():
    assert text_key("Ｃｏｕｇｈ  Syrup\n") == text_key("cough syrup") == "cough syrup"
    assert text_key("ﬁnal") == "final"


# -- config files and overrides -----------------------------------------------------------------
@pytest.mark.parametrize("name, text, line, fragment", [
    ("a.toml", "[training]\nbatch_size = " + BIG + "\n", 2, "a number has more than 4300 digits"),
    ("a.yaml", "training:\n  batch_size: " + BIG + "\n", 2, "a number has more than 4300 digits"),
    ("b.toml", "name = 'x'\nx = " + "[" * 100_000 + "]" * 100_000 + "\n", 2, "nested more than 64 levels deep"),
    ("b.yaml", "name: x\nx: " + "[" * 100_000 + "]" * 100_000 + "\n", 2, "nested more than 64 levels deep"),
    ("c.yaml", "x:\n" + "".join("  " * i + "- \n" for i in range(1, 200)), 65, "nested more than 64 levels deep"),
    ("d.yaml", "a: &a [1, 2]\nb: [*a, &b [*a, *a]]\nc: &c [1, *c]\n", 3, "refers to a value that contains it"),
])
def test_config_values_beyond_the_parser_are_one_error_with_a_line(tmp_path, name, text, line, fragment):
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigError) as info:
        load_file(path)
    assert info.value.file == str(path) and info.value.line == line and fragment in info.value.message


def test_yaml_alias_expansion_is_refused_before_it_is_built(tmp_path):
    levels = ["l0: &l0 [" + ", ".join(["lol"] * 10) + "]"]
    levels += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 12)]
    path = write(tmp_path, "laughs.yaml", "\n".join(levels) + "\n")
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="YAML aliases expand to more than 100,000 values") as info:
        load_file(path)
    assert time.perf_counter() - start < 2 and info.value.line == 5


def test_small_yaml_aliases_still_work(tmp_path):
    path = write(tmp_path, "ok.yaml", "base: &dims [64, 32]\nloss:\n  name: matryoshka\n  options: {dims: *dims}\n")
    assert load_file(path)["loss"]["options"]["dims"] == [64, 32]


def test_large_hex_integers_and_surrogates_in_configs_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="holds an integer of more than 4300 digits") as info:
        load_file(write(tmp_path, "h.toml", "[training]\nbatch_size = 0x" + "f" * 5000 + "\n"))
    assert info.value.key == "training.batch_size"
    with pytest.raises(ConfigError, match=r"holds a lone surrogate \(\\ud800\)") as info:
        load_file(write(tmp_path, "s.yaml", 'name: "x\\ud800"\n'))
    assert info.value.key == "name"


@pytest.mark.parametrize("override, fragment", [
    ("training.batch_size=" + BIG, "a number has more than 4300 digits"),
    ("evaluation.dims=" + "[" * 100_000, "nested more than 64 levels deep"),
    ("evaluation.dims=" + "[" * 100 + "]" * 100, "nested more than 64 levels deep"),
    ("name=[&a [x,x,x,x,x,x,x,x,x,x], &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a], &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b],"
     " &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c], &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]]", "YAML aliases expand"),
    ('name="\\ud800"', "lone surrogate"),
    ("a" + ".a" * 100 + "=1", "nested more than 64 levels deep"),
])
def test_overrides_beyond_the_parser_name_the_key(override, fragment):
    with pytest.raises(ConfigError) as info:
        apply_overrides({}, [override])
    assert fragment in info.value.message and info.value.key and info.value.line is None
    assert len(info.value.format()) < 400


def test_override_values_that_are_not_yaml_stay_text():
    assert parse_value("a: b: c") == "a: b: c"
    assert parse_value("[1, 2]") == [1, 2]


# -- metric specs -------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["ndcg@²", "ndcg@１０", "ndcg@" + BIG, "ndcg@1 0", "ndcg@-1", "ndcg@0"])
def test_metric_cut_offs_are_ascii_digits(spec):
    with pytest.raises(ConfigError, match="must be NAME@K with K a positive integer") as info:
        parse_metric(spec)
    assert len(info.value.message) < 120


def test_metric_cut_off_parses():
    assert parse_metric(" NDCG@10 ") == ("ndcg", 10)


# -- data files ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name, text, where, fragment", [
    ("a.jsonl", '{"anchor": "q", "positive": "p"}\n{"anchor": "q", "positive": "p", "n": ' + BIG + "}\n",
     {"line": 2}, "a number has more than 4300 digits"),
    ("b.jsonl", '{"anchor": "q", "positive": ' + "[" * 100_000 + "}\n", {"line": 1}, "nested too deeply"),
    ("c.json", '[{"anchor": "q", "positive": "p"},\n{"anchor": "q", "positive": ' + "[" * 100_000 + "}]", {"line": 2},
     "nested too deeply"),
    ("d.json", '[{"anchor": "q", "positive": "p"},\n{"anchor": "q", "positive": ' + BIG + "}]", {"line": 2},
     "a number has more than 4300 digits"),
    ("e.jsonl", '{"anchor": "q", "positive": "p"}\n{"anchor": "q\\ud800", "positive": "p"}\n', {"line": 2, "key": "anchor"},
     "holds a lone surrogate (\\ud800)"),
    ("f.json", '[{"anchor": "q", "positive": "p", "tags": ["a", "\\udc80"]}]', {"record": 1, "key": "tags[1]"},
     "lone surrogate"),
])
def test_data_values_beyond_the_parser_are_one_error(tmp_path, name, text, where, fragment):
    path = write(tmp_path, name, text)
    with pytest.raises(DataError) as info:
        formats.read_table(path)
    assert fragment in info.value.message and info.value.file == str(path)
    for key, value in where.items():
        assert getattr(info.value, key) == value, (key, info.value)


def test_paired_surrogate_escapes_are_text(tmp_path):
    path = write(tmp_path, "ok.jsonl", '{"anchor": "smile \\ud83d\\ude00", "positive": "p"}\n')
    assert formats.read_table(path).rows[0]["anchor"] == "smile \U0001F600"


def test_surrogate_in_a_json_list_inside_a_csv_cell(tmp_path):
    path = write(tmp_path, "hn.csv", 'anchor,positive,negatives\nq,p,"[""\\ud800""]"\n')
    columns = {"columns": {"negatives": "negatives"}}
    with pytest.raises(DataError, match="lone surrogate") as info:
        records.records_to_columns(formats.read_table(path), "hard-negatives", **columns)
    assert info.value.line == 2


def test_csv_records_end_only_at_newlines(tmp_path):
    text = 'anchor,positive\nq1\u2028more,a1\nq2\x85more,a\x0c2\n"q3\nsecond\u2028line",a3\nq4\x1c,a4\n'
    table = formats.read_table(write(tmp_path, "seps.csv", text))
    assert [r["anchor"] for r in table.rows] == ["q1\u2028more", "q2\x85more", "q3\nsecond\u2028line", "q4\x1c"]
    assert table.rows[1]["positive"] == "a\x0c2" and table.lines == [2, 3, 4, 6]
    table = formats.read_table(write(tmp_path, "crlf.tsv", "anchor\tpositive\r\nq1\ta1\rq2\ta2\r\n"))
    assert [r["anchor"] for r in table.rows] == ["q1", "q2"] and table.lines == [2, 3]


def test_csv_line_numbers_after_a_multi_line_field(tmp_path):
    path = write(tmp_path, "m.csv", 'anchor,positive\n"a\nb\r\nc",x\nq2,\n')
    with pytest.raises(DataError, match="field 'positive' is empty") as info:
        records.records_to_columns(formats.read_table(path), "pairs")
    assert info.value.line == 5


def test_csv_fields_over_128_kb_are_read(tmp_path):
    long = "x" * 300_000
    table = formats.read_table(write(tmp_path, "long.csv", f'anchor,positive\n"{long}",a1\n'))
    assert table.rows[0]["anchor"] == long


def test_csv_field_beyond_the_limit_and_unclosed_quotes_have_the_right_hint(tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "CSV_FIELD_LIMIT", 1000)
    import csv

    old = csv.field_size_limit(1000)
    try:
        with pytest.raises(DataError, match="a field is longer than 1,000 characters") as info:
            formats.read_table(write(tmp_path, "l.csv", "anchor,positive\nq,a\n\"" + "x" * 2000 + '",a\n'))
        assert info.value.line == 3 and "never closed" in info.value.hint
    finally:
        csv.field_size_limit(old)
    with pytest.raises(DataError, match="a quoted field is never closed") as info:
        formats.read_table(write(tmp_path, "u.csv", 'anchor,positive\nq,a\n"q2,a2\nq3,a3\n'))
    assert info.value.line == 3 and '""' in info.value.hint
    with pytest.raises(DataError, match="bad TSV record") as info:
        formats.read_table(write(tmp_path, "q.tsv", 'anchor\tpositive\n"q"x\ta\n'))
    assert info.value.line == 2 and "twice" in info.value.hint


# -- contradictory rows -------------------------------------------------------------------------
@pytest.mark.parametrize("dataset_type, text, key, other", [
    ("triplets", '{"anchor": "q", "positive": "The  Answer", "negative": "the answer"}\n', "negative", "positive"),
    ("triplets", '{"anchor": "Ｑｕｅｓｔｉｏｎ", "positive": "p", "negative": "question"}\n', "negative", "anchor"),
    ("hard-negatives", '{"anchor": "q", "positive": "p", "negatives": ["n", "P"]}\n', "negatives[1]", "positive"),
    ("hard-negatives", '{"anchor": "q", "positive": "p", "negative_1": "n", "negative_2": " Q "}\n', "negative_2", "anchor"),
])
def test_a_negative_equal_to_the_positive_or_anchor_is_refused(tmp_path, dataset_type, text, key, other):
    ok = text.replace('"q"', '"a"').replace('"p"', '"b"').replace("Ｑｕｅｓｔｉｏｎ", "x").replace("The  Answer", "y")
    table = formats.read_table(write(tmp_path, "rows.jsonl", ok + text))
    with pytest.raises(DataError) as info:
        records.records_to_columns(table, dataset_type)
    assert info.value.line == 2 and info.value.key == key
    assert f"field '{key}' is the same text as the {other}" in info.value.message and "push" in info.value.hint


def test_negatives_that_only_look_alike_are_kept(tmp_path):
    text = '{"anchor": "q", "positive": "heart attack", "negatives": ["heart attacks", "heart-attack"]}\n'
    columns, _ = records.records_to_columns(formats.read_table(write(tmp_path, "ok.jsonl", text)), "hard-negatives")
    assert columns["negative_1"] == ["heart attacks"]
