"""The semantic library: prompts, validation, fallbacks, the three backends, determinism.

    .venv/bin/python -m pytest tests/unit/library/test_library.py
"""
import hashlib
import json
from pathlib import Path

import open_clip
import pytest

from pipeline.config.library_params import DIMENSIONS, LibraryParams, LLMParams
from pipeline.config.schema import from_dict
from pipeline.core.atomic import write_jsonl
from pipeline.core.errors import UserError
from pipeline.library.build import build_library, format_summary
from pipeline.library.descriptions import (
    CLIP_CONTEXT,
    check_answer,
    clean_answer,
    clip_text,
    count_clip_tokens,
    offline_description,
    truncate_to_fit,
)
from pipeline.library.io import read_library
from pipeline.library.prompts import PROMPTS_DIR, load_template
from tests.helpers.fake_llm import Fault
from tests.helpers.worlds import LLM_KEY_ENV, LLM_SECRET
from tests.helpers.worlds import openai_params as shared_openai_params

KEY_ENV, SECRET = LLM_KEY_ENV, LLM_SECRET
pytestmark = pytest.mark.usefixtures("llm_key")


def openai_params(server, cache_dir, **overrides) -> LLMParams:
    return shared_openai_params(server, cache_dir, **{"max_retries": 2, **overrides})


def library(**values) -> LibraryParams:
    return from_dict(LibraryParams, values)


def build(names, contrasts, llm, lib=None):
    return build_library(names, contrasts, llm, lib or library(), progress=False)


def jsonl_bytes(records, path: Path) -> bytes:
    write_jsonl(path, records)
    return path.read_bytes()


# --- description text -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    "A tiger has orange fur with black stripes.",
    '"A tiger has orange fur with black stripes."',
    "Sure! Here is a description:\n\nA tiger has orange fur with black stripes.",
    "Here's one: A tiger has orange fur with black stripes.",
    "1. A tiger has orange fur with black stripes.",
    "- **Description:** \u201cA tiger has orange fur with black stripes.\u201d",
    "Description: A tiger has orange fur with black stripes. I hope this helps!",
    "Certainly!\n\nA tiger has orange fur\nwith black stripes.\n\nLet me know if you need more.",
    "Here are some options:\n* A tiger has orange fur with black stripes.\n* A tiger has a white belly.",
    "'A tiger has orange fur with black stripes.'\n",
])
def test_answers_are_stripped_of_boilerplate(raw):
    assert clean_answer(raw) == "A tiger has orange fur with black stripes."
    assert check_answer("tiger", raw) == ("A tiger has orange fur with black stripes.", None)


@pytest.mark.parametrize("raw, reason", [
    ("", "empty"), ("  \n ", "empty"), (None, "empty"), ('""', "empty"),
    ("I'm sorry, but I can't help with that.", "refusal"), ("As an AI language model, I cannot see.", "refusal"),
    ("I cannot describe this category.", "refusal"), ("Sure.", "too short"),
    ("A tiger " + "with very many stripes " * 20, "too long for CLIP"),
])
def test_unusable_answers_are_rejected_with_a_reason(raw, reason):
    assert reason in check_answer("tiger", raw)[1]


def test_answers_cut_at_max_tokens_are_rejected():
    assert "cut off" in check_answer("tiger", "A tiger has orange", finish_reason="length")[1]


def test_clip_text_prefixes_the_class_name_only_when_absent():
    assert clip_text("tiger", "A Tiger resting in tall grass.") == "A Tiger resting in tall grass."
    assert clip_text("sea_lion", "a sea lion on a rock") == "a sea lion on a rock"
    assert clip_text("sea_lion", "black and white stripes") == "sea lion: black and white stripes"


def test_clip_token_count_matches_what_clip_encodes():
    text = "A Tiger: orange fur, black stripes!"
    encoded = open_clip.get_tokenizer("ViT-B-32")([text])[0]
    assert count_clip_tokens(text) == int((encoded != 0).sum())  # start and end tokens included
    assert count_clip_tokens("") == 2


def test_over_long_text_is_truncated_to_a_fitting_word_prefix():
    text = " ".join(f"word{i}" for i in range(80))
    fitted = truncate_to_fit("tiger", text)
    assert text.startswith(fitted) and len(fitted) < len(text)
    assert count_clip_tokens(clip_text("tiger", fitted)) <= CLIP_CONTEXT
    longer = " ".join(text.split()[:len(fitted.split()) + 1])
    assert count_clip_tokens(clip_text("tiger", longer)) > CLIP_CONTEXT


# --- offline backend --------------------------------------------------------------------------------------------

def test_offline_backend_is_deterministic_and_varies_by_dimension():
    llm = from_dict(LLMParams, {"backend": "offline"})
    names, contrasts = ["tiger", "apple", "sea_lion"], ["lynx", None, "seal"]
    records, summary = build(names, contrasts, llm)
    assert (records, summary) == build(names, contrasts, llm)
    assert [(r["class_index"], r["slot"]) for r in records] == [(c, s) for c in range(3) for s in range(5)]
    assert [r["dimension"] for r in records[:5]] == list(DIMENSIONS)
    tiger = records[:5]
    assert len({r["text"] for r in tiger}) == 5 and all("tiger" in r["text"] for r in tiger)
    assert "lynx" in tiger[4]["text"] and tiger[4]["contrast_class"] == "lynx"
    assert records[9]["contrast_class"] is None and "sea lion" in records[10]["text"]
    assert all(r["source"] == "offline" and r["model"] is None and r["tokens_in"] == 0 for r in records)
    assert tiger[0]["prompt_sha"] == hashlib.sha256((PROMPTS_DIR / "general_appearance.txt").read_bytes()).hexdigest()
    assert all(r["clip_tokens"] == count_clip_tokens(clip_text(r["class_name"], r["text"])) <= 77 for r in records)
    assert summary["by_source"] == {"offline": 15} and summary["requests"] == 0 and summary["absent_slots"] == 0


def test_a_contrast_equal_to_the_class_name_is_no_contrast():
    records, _ = build(["missile", "missile"], ["Missile", "missile"], from_dict(LLMParams, {"backend": "offline"}))
    assert [r["contrast_class"] for r in records if r["dimension"] == "differential"] == [None, None]
    assert [r["text"] for r in records[:5]] == [r["text"] for r in records[5:]]


def test_offline_variants_per_dimension_differ():
    records, _ = build(["owl"], [None], from_dict(LLMParams, {"backend": "offline"}),
                       library(per_dimension=7, dimensions=["context", "differential"]))
    assert [r["slot"] for r in records] == list(range(14))
    assert [r["dimension"] for r in records] == ["context"] * 7 + ["differential"] * 7
    assert len({r["text"] for r in records}) == 14
    assert offline_description("owl", "context", None, 3) == records[3]["text"]


# --- openai backend ---------------------------------------------------------------------------------------------

def test_each_dimension_sends_its_own_template_and_records_it(server, tmp_path):
    llm = openai_params(server, tmp_path / "cache", temperature=0.3, seed=7, max_tokens=64)
    records, summary = build(["tiger", "owl"], ["tiger cat", None], llm)
    bodies = {(r.class_name, json.dumps(r.body["messages"])) for r in server.requests}
    for dimension in DIMENSIONS:
        template = load_template(dimension)
        assert ("tiger", json.dumps(template.messages("tiger", "tiger cat", 0, 1))) in bodies
        assert ("owl", json.dumps(template.messages("owl", None, 0, 1))) in bodies
    assert {(r.body["model"], r.body["temperature"], r.body["seed"], r.body["max_tokens"]) for r in server.requests} \
        == {("gpt-4o-mini", 0.3, 7, 64)}
    assert len({json.dumps(r.body["messages"]) for r in server.requests}) == 10
    differential = [r for r in server.requests if "confused" in r.user_text]
    assert len(differential) == 1 and '"tiger cat"' in differential[0].user_text
    tiger, owl = records[:5], records[5:]
    assert tiger[4]["contrast_class"] == "tiger cat" and owl[4]["contrast_class"] is None
    assert all(r["source"] == "llm" and r["model"] == "gpt-4o-mini" and r["tokens_in"] > 0 for r in records)
    for record in records:
        path = PROMPTS_DIR / f"{record['dimension']}.txt"
        assert record["prompt_sha"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert summary["requests"] == 10 and summary["by_source"] == {"llm": 10}


def test_several_descriptions_per_dimension_are_distinct_requests(server, tmp_path):
    records, _ = build(["owl"], ["hawk"], openai_params(server, tmp_path), library(per_dimension=2))
    assert len(records) == 10 and len({r["text"] for r in records}) == 10
    assert sum("description 2 of 2" in r.user_text for r in server.requests) == 5


def test_invalid_answers_are_reasked_then_fall_back(server, tmp_path):
    def policy(request):
        first_ask = len(request.body["messages"]) == 2
        return {"cat": "long" if first_ask else None, "owl": "refusal" if first_ask else None,
                "dog": "empty"}[request.class_name]
    server.policy = policy
    llm = openai_params(server, tmp_path)
    records, summary = build(["cat", "dog", "owl"], ["dog", "cat", None], llm, library(max_reasks=1))
    assert [r["source"] for r in records] == ["llm"] * 5 + ["fallback"] * 5 + ["llm"] * 5
    dog = records[5:10]
    assert [r["text"] for r in dog] == [offline_description("dog", d, "cat") for d in DIMENSIONS]
    assert all(r["model"] == "gpt-4o-mini" for r in dog)
    assert summary["fallbacks"] == 5 and summary["fallback_classes"] == ["dog"]
    assert summary["fallback_reasons"] == {"rejected: empty": 5}
    assert summary["reasks"] == 15 and summary["requests"] == 30 == len(server.requests)
    reasks = [r for r in server.requests if r.class_name == "cat" and len(r.body["messages"]) == 4]
    assert len(reasks) == 5 and all("too long for CLIP" in r.body["messages"][3]["content"] for r in reasks)
    assert all(r.body["messages"][2]["role"] == "assistant" for r in reasks)
    assert "FALLBACKS 5" in format_summary(summary) and "dog" in format_summary(summary)


def test_persistent_server_failure_of_one_class_falls_back_then_resumes(server, tmp_path):
    server.policy = lambda request: "500" if request.class_name == "zebra" else None
    llm = openai_params(server, tmp_path / "cache", max_retries=1)
    names, contrasts = ["cat", "zebra", "horse"], ["horse", "horse", "zebra"]
    records, summary = build(names, contrasts, llm)
    assert [r["source"] for r in records[5:10]] == ["fallback"] * 5
    assert {r["source"] for r in records[:5] + records[10:]} == {"llm"}
    assert summary["failures"] == 5 and summary["fallback_classes"] == ["zebra"]
    assert summary["fallback_reasons"] == {"HTTP 500": 5} and summary["retries"] == 5
    server.policy, server.requests[:] = None, []
    records, summary = build(names, contrasts, llm)  # failures are not cached: only zebra is asked again
    assert {r.class_name for r in server.requests} == {"zebra"} and summary["requests"] == 5
    assert summary["by_source"] == {"llm": 15} and summary["fallbacks"] == 0


def test_transient_faults_change_nothing_in_the_output(server, tmp_path):
    names, contrasts = ["cat", "dog"], ["dog", "cat"]
    clean, _ = build(names, contrasts, openai_params(server, tmp_path / "clean"))
    server.script("429", "500", Fault("slow", delay=1.0), "malformed", "close", "other-model")
    faulty, summary = build(names, contrasts, openai_params(server, tmp_path / "faulty", timeout_s=0.3))
    assert jsonl_bytes(faulty, tmp_path / "a.jsonl") == jsonl_bytes(clean, tmp_path / "b.jsonl")
    assert summary["retries"] == 5 and summary["fallbacks"] == 0 and summary["model_mismatches"] == 1


def test_rerun_makes_zero_requests_and_writes_identical_bytes(server, tmp_path):
    server.policy = lambda request: "refusal" if request.class_name == "dog" and len(request.body["messages"]) == 2 \
        else None
    llm = openai_params(server, tmp_path / "cache")
    first, summary = build(["cat", "dog"], ["dog", None], llm)
    sent = len(server.requests)
    assert sent == summary["requests"] == 15
    again, summary = build(["cat", "dog"], ["dog", None], llm)
    assert len(server.requests) == sent and summary["requests"] == 0 and summary["cache_hits"] == 15
    assert summary["tokens_in"] == 0 and summary["reasks"] == 5
    assert jsonl_bytes(again, tmp_path / "a.jsonl") == jsonl_bytes(first, tmp_path / "b.jsonl")


def test_missing_api_key_fails_before_any_request(server, tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(UserError, match=f"{KEY_ENV}.*not set"):
        build(["cat"], [None], openai_params(server, tmp_path))
    assert server.requests == []


def test_a_rejected_key_stops_the_build_with_a_user_error(server, tmp_path):
    server.policy = lambda request: Fault("401", body=json.dumps({"error": {"message": f"bad key {SECRET}"}}))
    with pytest.raises(UserError, match="rejected the API key") as err:
        build(["cat", "dog"], [None, None], openai_params(server, tmp_path))
    assert SECRET not in str(err.value)


def test_the_key_appears_in_no_record_cache_or_summary(server, tmp_path):
    server.script("500", "empty", "other-model")
    records, summary = build(["cat", "dog"], ["dog", "cat"], openai_params(server, tmp_path / "cache"))
    assert server.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    output = jsonl_bytes(records, tmp_path / "library.jsonl")
    cache_bytes = b"".join(p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert b"cat" in output and cache_bytes  # the checks below look at real content
    for blob in (output, cache_bytes, format_summary(summary).encode(), json.dumps(summary).encode()):
        assert SECRET.encode() not in blob and b"SECRET" not in blob


# --- file backend -----------------------------------------------------------------------------------------------

def file_params(tmp_path, data, **values):
    path = tmp_path / "descriptors.json"
    path.write_text(json.dumps(data))
    return from_dict(LLMParams, {"backend": "file"}), library(file=str(path), **values)


def test_file_backend_imports_plain_lists_with_robust_name_matching(tmp_path):
    llm, lib = file_params(tmp_path, {
        " Sea_Lion ": [f"- sea lion description {i}." for i in range(7)],
        "TIGER": ["Tigers have stripes.", "", "I'm sorry, I cannot.", "A tiger in grass.", "x " * 100],
        "missile": ["A missile on a launcher."]})
    names = ["sea lion", "tiger", "missile", "missile"]
    records, summary = build(names, ["seal", "lion", "missile", None], llm, lib)
    by_class = {c: [r for r in records if r["class_index"] == c] for c in range(4)}
    assert [r["text"] for r in by_class[0]] == [f"sea lion description {i}." for i in range(5)]
    assert [r["slot"] for r in by_class[1]] == [0, 1, 2] and by_class[1][1]["text"] == "A tiger in grass."
    assert count_clip_tokens(clip_text("tiger", by_class[1][2]["text"])) <= 77
    assert [(r["text"], r["class_name"]) for r in by_class[2]] == [(r["text"], r["class_name"]) for r in by_class[3]]
    assert all(r["source"] == "file" and r["model"] is None and r["prompt_sha"] is None
               and r["contrast_class"] is None for r in records)
    assert summary["absent_slots"] == 2 + 4 + 4 and summary["truncated"] == 1 and summary["dropped"] == 2
    assert summary["by_source"] == {"file": len(records)}


def test_file_backend_accepts_per_dimension_mappings(tmp_path):
    llm, lib = file_params(tmp_path, {"cat": {"context": ["A cat on a sofa.", "A cat in a garden.", "A cat."],
                                              "general_appearance": "A small furry cat."}}, per_dimension=2)
    records, _ = build(["cat"], [None], llm, lib)
    assert [(r["slot"], r["dimension"], r["text"]) for r in records] == [
        (0, "general_appearance", "A small furry cat."), (6, "context", "A cat on a sofa."),
        (7, "context", "A cat in a garden.")]


def test_file_output_reads_back_with_absent_slots_masked(tmp_path):
    llm, lib = file_params(tmp_path, {"cat": ["a", "b", "c", "d", "e"], "dog": ["fetching a ball"]})
    records, _ = build(["cat", "dog"], [None, None], llm, lib)
    write_jsonl(tmp_path / "lib.jsonl", records)
    table = read_library(tmp_path / "lib.jsonl", ["cat", "dog"])
    assert table.mask.tolist() == [[True] * 5, [True, False, False, False, False]]
    assert table.texts[-1] == "dog: fetching a ball"


def test_file_backend_missing_classes_are_an_error_listing_them(tmp_path):
    llm, lib = file_params(tmp_path, {"cat": ["A cat."]})
    names = ["cat"] + [f"class {i}" for i in range(12)]
    with pytest.raises(UserError) as err:
        build(names, [None] * 13, llm, lib)
    message = str(err.value)
    assert "12 classes are missing" in message and "'class 9'" in message and "'class 10'" not in message
    assert "and 2 more" in message and "library.missing: offline" in message


def test_file_backend_missing_classes_can_get_offline_descriptions(tmp_path):
    llm, lib = file_params(tmp_path, {"cat": ["A cat."]}, missing="offline")
    records, summary = build(["cat", "owl"], ["owl", "cat"], llm, lib)
    assert [r["source"] for r in records] == ["file"] + ["offline"] * 5
    assert records[-1]["contrast_class"] == "cat" and summary["missing_classes"] == 1


@pytest.mark.parametrize("content, message", [
    (None, "is a folder \\(the default is the placeholder data/descriptors\\)"),
    ("{not json", "not valid"), ("[1, 2]", "JSON object"),
    ('{"cat": [1]}', "list of strings"), ('{"cat": {"colour": ["red"]}}', "unknown dimension"),
    ('{"Cat": ["a"], "cat": ["b"]}', "two entries"),
])
def test_file_backend_bad_files_are_user_errors(tmp_path, content, message):
    path = tmp_path / "d.json"
    if content is not None:
        path.write_text(content)
    lib = library(file=str(path) if content is not None else str(tmp_path))
    with pytest.raises(UserError, match=message):
        build(["cat"], [None], from_dict(LLMParams, {"backend": "file"}), lib)
