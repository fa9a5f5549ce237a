"""Tests for flux.job.JobID (RFC 19 encodings) and flux.job.fluid, spec 2.5."""

import errno
import importlib
import os
import pickle
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flux.job import JobID, id_encode, id_parse
from flux.job.fluid import (
    FluidGenerator,
    fluid_compose,
    fluid_generator_id,
    fluid_sequence,
    fluid_timestamp,
)

# flux.job.JobID is the class; the module is reached through importlib
jobid_mod = importlib.import_module("flux.job.JobID")

ENCODINGS = ["dec", "hex", "dothex", "kvs", "words", "f58", "f58plain", "emoji"]

# int -> (dothex, f58 digits, words, emoji), from the spec
VECTORS = [
    (0, "0000.0000.0000.0000", "1",
     "academy-academy-academy--academy-academy-academy", "😃"),
    (1, "0000.0000.0000.0001", "2",
     "acrobat-academy-academy--academy-academy-academy", "😄"),
    (65535, "0000.0000.0000.ffff", "LUv",
     "nevada-archive-academy--academy-academy-academy", "💁📚"),
    (6787342413402046, "0018.1d0d.4d85.0fbe", "uzzybunny",
     "cake-plume-nepal--neuron-pencil-academy", "👴😱🔚🎮🕙🚩"),
    (18446744073709551614, "ffff.ffff.ffff.fffe", "jpXCZedGfVP",
     "mustang-analyze-verbal--natural-analyze-verbal", "🚹💗💧👗😷📷📙"),
]

INVALID = [
    "invalid", "-1", "0.0.0", "0.0.0.0.0", "0.0.0.g", "job.0.0",
    "notjob.0.0.0.0", "f0", "fO", "fI", "🦄",
    # bad word lists
    "academy-academy-academy--academy-academy",
    "academy-academy-academy--academy-academy-academy-academy",
    "academy-academy-academy--academy-academy-notaword",
    "academy-academy-jet--academy-academy-academy",  # index >= 1626
    "yes-yes-yes--academy-academy-academy",  # group overflows 32 bits
    # more malformed strings
    "", "   ", "job.", "f", "ƒ", "0x", "0X10", "12abc", "1 2", "+5",
    "00000.0000.0000.0000", "0000.0000.0000.0000 ", "0.0..0",
    "f1111111111111",  # 13 digits
    "fzzzzzzzzzzzz",  # 12 digits but >= 2**64
    "18446744073709551616", "0x10000000000000000",
    "😃😃😃😃😃😃😃😃",  # 8 emoji digits (32 bytes)
    "😃🦄", "😃a",
]


@pytest.fixture
def utf8_f58(monkeypatch):
    monkeypatch.delenv("FLUX_F58_FORCE_ASCII", raising=False)
    monkeypatch.setattr(jobid_mod.locale, "nl_langinfo", lambda item: "UTF-8")


# --- test vectors ------------------------------------------------------------


@pytest.mark.parametrize("value, dothex, f58, words, emoji", VECTORS)
def test_vectors_encode(utf8_f58, value, dothex, f58, words, emoji):
    jobid = JobID(value)
    assert jobid.dothex == dothex
    assert jobid.kvs == "job." + dothex
    assert jobid.f58 == "ƒ" + f58
    assert jobid.f58plain == "f" + f58
    assert jobid.words == words
    assert jobid.emoji == emoji
    assert jobid.dec == str(value)
    assert jobid.hex == "0x%x" % value
    assert str(jobid) == "ƒ" + f58
    assert repr(jobid) == f"JobID({value})"


@pytest.mark.parametrize("value, dothex, f58, words, emoji", VECTORS)
def test_vectors_decode(value, dothex, f58, words, emoji):
    for text in (dothex, "job." + dothex, "ƒ" + f58, "f" + f58, words, emoji,
                 str(value), "0x%x" % value):
        assert id_parse(text) == value
        jobid = JobID(text)
        assert jobid == value
        assert jobid.orig == text


@pytest.mark.parametrize("text", INVALID)
def test_invalid_jobid(text):
    with pytest.raises(ValueError) as exc:
        JobID(text)
    assert str(exc.value) == f"{text} is not a valid Flux jobid"
    with pytest.raises(OSError) as exc:
        id_parse(text)
    assert exc.value.errno == errno.EINVAL


# --- parsing rules -----------------------------------------------------------


def test_leading_whitespace_stripped_everywhere():
    assert id_parse("  \t0000.0000.0000.0001") == 1
    assert id_parse(" job.0000.0000.0000.0001") == 1
    assert id_parse(" ƒ2") == 1
    assert id_parse(" acrobat-academy-academy--academy-academy-academy") == 1
    assert id_parse(" 😄") == 1
    assert id_parse(" 0x10") == 16


def test_trailing_whitespace_only_for_numbers():
    assert id_parse("42 ") == 42
    assert id_parse("0x2a\n") == 42
    for text in ("ƒ2 ", "0000.0000.0000.0001 ", "😄 "):
        with pytest.raises(OSError):
            id_parse(text)


def test_dothex_groups():
    assert id_parse("0.0.0.1") == 1
    assert id_parse("1.0.0.0") == 1 << 48
    assert id_parse("FFFF.0.0.0") == 0xFFFF << 48
    assert id_parse("job.ffff.ffff.ffff.ffff") == 2**64 - 1


def test_any_dash_means_words():
    # "-" wins over decimal parsing: negative numbers are invalid
    for text in ("-1", "-0", "1-2"):
        with pytest.raises(OSError):
            id_parse(text)


def test_words_case_insensitive():
    assert id_parse("Acrobat-ACADEMY-academy--academy-academy-academy") == 1


def test_f58_prefixes_and_length():
    assert id_parse("f" + "1" * 12) == 0  # 12 digits is the maximum
    assert id_parse("fjpXCZedGfVQ") == 2**64 - 1


def test_full_64_bit_range_valid():
    # every 64-bit value has a timestamp field below 2**40
    assert JobID("18446744073709551615") == 2**64 - 1
    assert JobID("0xffffffffffffffff").emoji


def test_bytes_accepted():
    assert JobID(b"f2") == 1
    assert id_parse(b"0x10") == 16


def test_non_string_is_parsed_as_string():
    with pytest.raises(ValueError):
        JobID(None)
    with pytest.raises(ValueError):
        JobID(1.5)


# --- JobID object ------------------------------------------------------------


def test_int_not_validated():
    assert JobID(-1) == -1
    assert JobID(2**70) == 2**70
    assert JobID(5).orig == "5"


def test_jobid_from_jobid_keeps_orig():
    original = JobID("ƒuzzybunny")
    copy = JobID(original)
    assert copy == 6787342413402046
    assert copy.orig == "ƒuzzybunny"
    assert type(copy) is JobID


def test_is_an_int():
    jobid = JobID("f2")
    assert isinstance(jobid, int)
    assert jobid + 1 == 2
    assert hash(jobid) == hash(1)
    assert {jobid: "x"}[1] == "x"
    assert int(jobid) == 1


def test_encode_default_is_dec():
    assert JobID(65535).encode() == "65535"
    assert isinstance(JobID(65535).dec, str)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_encode_matches_id_encode(encoding):
    jobid = JobID(6787342413402046)
    assert jobid.encode(encoding) == id_encode(jobid, encoding)
    assert getattr(jobid, encoding) == id_encode(jobid, encoding)


def test_pickle_round_trip():
    jobid = JobID("ƒuzzybunny")
    copy = pickle.loads(pickle.dumps(jobid))
    assert copy == jobid and copy.orig == "ƒuzzybunny" and type(copy) is JobID


# --- id_encode ---------------------------------------------------------------


def test_id_encode_default_f58(utf8_f58):
    assert id_encode(65535) == "ƒLUv"


def test_id_encode_case_insensitive():
    assert id_encode(1, "DOTHEX") == "0000.0000.0000.0001"


def test_id_encode_unknown_encoding():
    with pytest.raises(OSError) as exc:
        id_encode(1, "base64")
    assert exc.value.errno == errno.EPROTO


def test_id_encode_out_of_range():
    for value in (-1, 2**64):
        with pytest.raises(OSError) as exc:
            id_encode(value, "dec")
        assert exc.value.errno == errno.EOVERFLOW


# --- f58 prefix and locale ---------------------------------------------------


def test_f58_ascii_forced(monkeypatch, utf8_f58):
    monkeypatch.setenv("FLUX_F58_FORCE_ASCII", "1")
    assert str(JobID(1)) == "f2"
    assert JobID(1).f58 == "f2"


def test_f58_non_utf8_locale(monkeypatch):
    monkeypatch.delenv("FLUX_F58_FORCE_ASCII", raising=False)
    monkeypatch.setattr(jobid_mod.locale, "nl_langinfo", lambda item: "ANSI_X3.4-1968")
    assert str(JobID(1)) == "f2"
    assert JobID(1).f58plain == "f2"


def test_f58plain_always_ascii(utf8_f58):
    assert JobID(1).f58plain == "f2"


@pytest.mark.parametrize("lang, prefix", [("C", "f"), ("C.UTF-8", "ƒ")])
def test_f58_prefix_in_real_locale(lang, prefix):
    if lang != "C" and "utf" not in " ".join(_locales()).lower():
        pytest.skip("no UTF-8 locale installed")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LC_") and k not in ("LANG", "LANGUAGE")}
    env.pop("FLUX_F58_FORCE_ASCII", None)
    env.update(LC_ALL=lang, PYTHONCOERCECLOCALE="0", PYTHONUTF8="0",
               PYTHONIOENCODING="utf-8")
    out = subprocess.run(
        [sys.executable, "-c", "from flux.job import JobID; print(JobID(1))"],
        env=env, capture_output=True, check=True,
    ).stdout.decode("utf-8")
    assert out.strip() == prefix + "2"


def _locales():
    try:
        return subprocess.run(["locale", "-a"], capture_output=True,
                              text=True).stdout.split()
    except OSError:
        return []


def test_tables_loaded_lazily():
    code = (
        "import flux.job, importlib, sys\n"
        "m = importlib.import_module('flux.job.JobID')\n"
        "j = flux.job.JobID('ƒuzzybunny'); str(j); j.dothex\n"
        "assert not m._tables, m._tables\n"
        "assert 'yaml' not in sys.modules\n"
        "j.words\n"
        "assert list(m._tables) == ['mnemonicode-words.txt'], m._tables\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_data_tables():
    assert len(jobid_mod._words()) == 1633
    emoji = jobid_mod._emoji()
    assert len(emoji) == 576 and len(set(emoji)) == 576
    assert emoji[0] == "😃"
    assert all(len(e.encode("utf-8")) == 4 for e in emoji)


# --- properties --------------------------------------------------------------

ids64 = st.integers(min_value=0, max_value=2**64 - 1)


@settings(max_examples=300)
@given(ids64, st.sampled_from(ENCODINGS))
def test_round_trip_every_encoding(value, encoding):
    assert (value >> 24) < 2**40
    text = id_encode(value, encoding)
    assert id_parse(text) == value
    jobid = JobID(text)
    assert jobid == value and jobid.orig == text


@settings(max_examples=200)
@given(ids64)
def test_str_round_trip(value):
    assert JobID(str(JobID(value))) == value


@given(st.text(max_size=40))
def test_arbitrary_text_is_value_error_or_valid(text):
    try:
        value = JobID(text)
    except ValueError:
        return
    assert 0 <= value < 2**64


@given(ids64)
def test_encodings_order_preserving_lengths(value):
    # dothex and kvs are fixed width; hex and dec are canonical
    assert len(id_encode(value, "dothex")) == 19
    assert id_encode(value, "dec") == str(value)
    assert int(id_encode(value, "hex"), 16) == value


# --- FLUID -------------------------------------------------------------------


class FakeClock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def test_fluid_fields():
    fluid = fluid_compose(123456, 7, 9)
    assert fluid == (123456 << 24) | (7 << 10) | 9
    assert fluid_timestamp(fluid) == 123456
    assert fluid_generator_id(fluid) == 7
    assert fluid_sequence(fluid) == 9
    with pytest.raises(OverflowError):
        fluid_compose(2**40, 0, 0)
    with pytest.raises(ValueError):
        fluid_compose(0, 2**14, 0)
    with pytest.raises(ValueError):
        fluid_compose(0, 0, 1024)


def test_generator_args():
    with pytest.raises(ValueError):
        FluidGenerator(2**14, 0)
    with pytest.raises(ValueError):
        FluidGenerator(-1, 0)
    with pytest.raises(TypeError):
        FluidGenerator("0", 0)
    with pytest.raises(TypeError):
        FluidGenerator(0, 1.5)


def test_generator_timestamp_and_rank():
    clock = FakeClock(1_000_500)
    gen = FluidGenerator(3, 1_000_000, clock=clock)
    fluid = gen.next()
    assert fluid_timestamp(fluid) == 500
    assert fluid_generator_id(fluid) == 3
    assert fluid_sequence(fluid) == 0
    clock.now += 10
    assert fluid_timestamp(next(gen)) == 510


def test_generator_real_clock():
    import time

    epoch = time.time_ns() // 1_000_000 - 5000
    gen = FluidGenerator(0, epoch)
    ids = [gen.next() for _ in range(3000)]
    assert ids == sorted(set(ids))
    assert fluid_timestamp(ids[0]) >= 5000


def test_generator_stalled_clock_and_borrow():
    clock = FakeClock(100)
    gen = FluidGenerator(1, 0, clock=clock)
    ids = [gen.next() for _ in range(2500)]
    assert ids == sorted(set(ids))
    assert [fluid_sequence(i) for i in ids[:3]] == [0, 1, 2]
    assert fluid_timestamp(ids[1023]) == 100 and fluid_sequence(ids[1023]) == 1023
    assert fluid_timestamp(ids[1024]) == 101 and fluid_sequence(ids[1024]) == 0
    assert fluid_timestamp(ids[-1]) == 102
    # the clock catching up does not reuse borrowed milliseconds
    clock.now = 101
    assert gen.next() > ids[-1]
    clock.now = 200
    assert fluid_timestamp(gen.next()) == 200


def test_generator_clock_goes_backwards():
    clock = FakeClock(5000)
    gen = FluidGenerator(2, 0, clock=clock)
    first = gen.next()
    clock.now = 10
    second = gen.next()
    assert second > first
    assert fluid_timestamp(second) == 5000


def test_generator_clock_before_epoch():
    gen = FluidGenerator(0, 1000, clock=FakeClock(0))
    assert gen.next() == fluid_compose(0, 0, 0)
    assert gen.next() == fluid_compose(0, 0, 1)


def test_generator_restart_same_epoch():
    clock = FakeClock(10_000)
    gen = FluidGenerator(0, 1000, clock=clock)
    last = [gen.next() for _ in range(5)][-1]
    clock.now += 1
    restarted = FluidGenerator(0, 1000, clock=clock)
    assert restarted.next() > last


def test_generator_after():
    # a restart with a clock behind the last id still moves forward
    last = fluid_compose(50_000, 9, 17)
    gen = FluidGenerator(0, 0, clock=FakeClock(10), after=last)
    fluid = gen.next()
    assert fluid > last
    assert fluid_timestamp(fluid) == 50_001


def test_generator_overflow():
    gen = FluidGenerator(0, 0, clock=FakeClock(2**40))
    with pytest.raises(OverflowError):
        gen.next()


def test_generated_ids_are_valid_jobids():
    gen = FluidGenerator(16383, 0, clock=FakeClock(2**40 - 1))
    fluid = gen.next()
    assert JobID(JobID(fluid).f58) == fluid


@settings(max_examples=200)
@given(
    st.integers(min_value=0, max_value=2**14 - 1),
    st.integers(min_value=0, max_value=2**30),
    st.lists(st.tuples(st.integers(min_value=-50, max_value=50),
                       st.integers(min_value=1, max_value=1500)),
             min_size=1, max_size=8),
)
def test_fluid_monotonic(generator_id, start, steps):
    """Whatever the clock does (stall, jump back, jump ahead), ids strictly
    increase, keep the generator id, and never fall behind the clock."""
    clock = FakeClock(start)
    gen = FluidGenerator(generator_id, 0, clock=clock)
    last = -1
    highest = 0
    for delta, count in steps:
        clock.now = max(0, clock.now + delta)
        highest = max(highest, clock.now)
        for _ in range(count):
            fluid = gen.next()
            assert fluid > last
            assert fluid_generator_id(fluid) == generator_id
            assert fluid_timestamp(fluid) >= highest
            last = fluid
