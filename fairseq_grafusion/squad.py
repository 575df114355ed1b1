"""SQuAD v1.1-format QA files (MLQA, XQuAD, TyDiQA-GoldP, XTREME translate-train): the one reader
and writer of the project.

* :func:`read_squad` -- the pipeline's strict reader: passages and questions, checking what later
  stages rely on: valid JSON, the SQuAD nesting, a unique ``id`` per question, answers whose
  ``answer_start`` points at their ``text`` in the context, non-empty contexts.  Structural errors
  always stop with one line naming the file and the line or question id; an answer that does not
  match its context or an empty context stops too, unless ``skip_bad`` is set, in which case the
  question is dropped and counted (``stats``).  With ``ignore_answers`` (prediction input: gold
  answers are only for scoring) answers are neither checked nor returned and questions of an empty
  context are kept, so every question of the file gets an answer.
* :func:`read_gold` / :func:`gold_answers` -- gold files for scoring: question ids, contexts and
  answer texts only (an official evaluation script reads no more: ``answer_start`` is not checked).
* :func:`load_json` -- any JSON file of the commands (gold, predictions), with one-line errors
  (malformed or nested too deep to parse).  Every reader goes through
  :func:`~.files.read_text`, so a UTF-8 byte-order mark (as Windows editors write it) is read the
  same way by every command.
* :func:`write_squad` -- passages and questions back to a SQuAD file, atomically.

No torch import: the pipeline's readers and writers work without it.
"""
import collections
import json
import sys

from .errors import GraFusionError
from .files import atomic_path, read_text


def _read_text(path, what):
    return read_text(path, f"{what} file")


def _parse_json(raw, path, what):
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise GraFusionError(f"{what} file {path} line {e.lineno} column {e.colno}: malformed "
                             f"JSON ({e.msg})") from None
    except RecursionError:  # Python's parser recurses once per level of [ or {
        depth = _depth_line(raw)
        raise GraFusionError(f"{what} file {path} line {depth}: JSON nested too deep to read "
                             f"(more than {sys.getrecursionlimit()} levels of [ or {{)") from None


def _depth_line(raw, limit=None):
    """1-based line where the nesting of ``[`` / ``{`` first exceeds ``limit`` (strings skipped)."""
    limit = limit or sys.getrecursionlimit() // 2
    depth, in_string, escaped, line = 0, False, False, 1
    for char in raw:
        if char == "\n":
            line += 1
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return line
        elif char in "]}":
            depth -= 1
    return line


def has_line_break(text):
    """Whether ``text`` holds a character that ends a line for str.splitlines (``\\n``, ``\\r``,
    U+2028, U+0085, ...): ids are stored one per line."""
    return len((text + "x").splitlines()) > 1


def load_json(path, what):
    """The content of the JSON file ``path``; ``what`` names it in errors ("gold", ...)."""
    return _parse_json(_read_text(path, what), path, what)


def _line_of(raw, text):
    """1-based line of the first occurrence of ``text`` (as JSON) in ``raw``, or None."""
    if not isinstance(text, str) or not text:
        return None
    pos = raw.find(json.dumps(text, ensure_ascii=False)[1:-1])
    if pos < 0:
        pos = raw.find(json.dumps(text)[1:-1])
    return raw.count("\n", 0, pos) + 1 if pos >= 0 else None


def _where(path, raw, text, fallback):
    line = _line_of(raw, text)
    return f"{path} line {line}" if line else f"{path} ({fallback})"


def read_squad(path, skip_bad=False, ignore_answers=False, require_answers=False):
    """``(passages, questions, stats)`` of a SQuAD v1.1 JSON file.

    ``passages``: list of ``{"context", "title"}``; ``questions``: list of
    ``{"id", "question", "passage" (index), "answers": [{"text", "answer_start"}]}``.
    ``require_answers`` (training data): a question without an ``answers`` list is an error (or,
    with ``skip_bad``, dropped and counted); elsewhere it is kept without gold, and counted.
    """
    raw = _read_text(path, "QA")
    data = _parse_json(raw, path, "QA")
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise GraFusionError(f"{path}: not a SQuAD file (expected {{\"data\": [...]}} at the top)")
    passages, questions, seen = [], [], {}
    stats = collections.Counter()
    for a, article in enumerate(data["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise GraFusionError(f"{path}: data[{a}] has no 'paragraphs' list")
        for p, paragraph in enumerate(paragraphs):
            at = f"data[{a}].paragraphs[{p}]"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str) \
                    or not isinstance(paragraph.get("qas"), list):
                raise GraFusionError(f"{path}: {at} needs a 'context' string and a 'qas' list")
            context = paragraph["context"]
            qas = paragraph["qas"]
            ids = []
            for q, qa in enumerate(qas):
                qat = f"{at}.qas[{q}]"
                if not isinstance(qa, dict):
                    raise GraFusionError(f"{path}: {qat} is not an object")
                qid = qa.get("id")
                if qid is None or str(qid).strip() == "":
                    where = _where(path, raw, qa.get("question"), qat)
                    raise GraFusionError(f"{where}: question {str(qa.get('question', ''))[:60]!r} has no 'id'")
                if not isinstance(qid, str):  # the official scripts match ids as strings
                    where = _where(path, raw, qa.get("question"), qat)
                    raise GraFusionError(f"{where}: question id {qid!r} is a {type(qid).__name__}, "
                                         "not a string (SQuAD ids are strings, and predictions are "
                                         f"matched to them as strings: write \"{qid}\")")
                if has_line_break(qid):
                    where = _where(path, raw, qa.get("question"), qat)
                    raise GraFusionError(f"{where}: question id {qid!r} contains a line break "
                                         "(ids are stored one per line); remove it from the id")
                if qid in seen:
                    raise GraFusionError(f"{path}: question id {qid!r} occurs twice ({seen[qid]} and {qat})")
                seen[qid] = qat
                if not isinstance(qa.get("question"), str):
                    raise GraFusionError(f"{path}: question {qid!r} has no 'question' string")
                ids.append(qid)
            qas, ids = _usable_questions(path, raw, qas, ids, skip_bad, stats)
            if ignore_answers:
                passages.append({"context": context, "title": article.get("title", "")})
                questions += [{"id": qid, "question": qa["question"], "passage": len(passages) - 1,
                               "answers": []} for qa, qid in zip(qas, ids)]
                stats["gold answers ignored (questions)"] += sum(bool(qa.get("answers")) for qa in qas)
                stats["empty contexts kept (questions)"] += len(ids) if not context.strip() else 0
                continue
            if not context.strip():
                if not skip_bad:
                    raise GraFusionError(f"{path}: {at} has an empty context (questions "
                                         f"{', '.join(ids[:3]) or 'none'}); --skip-bad drops it")
                stats["empty context (questions dropped)"] += len(ids)
                continue
            kept = []
            for qa, qid in zip(qas, ids):
                answers, bad, reason = [], None, "answer does not match its context"
                if not isinstance(qa.get("answers"), list):
                    if require_answers or "answers" in qa:
                        bad, reason = ("has no 'answers' list (training questions need their gold "
                                       "answers)" if "answers" not in qa else
                                       f"'answers' is a {type(qa['answers']).__name__}, not a list"), \
                            "no 'answers' list"
                    else:
                        stats["questions without an 'answers' key (kept, no gold)"] += 1
                for ans in qa.get("answers") if isinstance(qa.get("answers"), list) else []:
                    text, start = (ans.get("text"), ans.get("answer_start")) if isinstance(ans, dict) else (None, None)
                    if not isinstance(text, str) or not isinstance(start, int):
                        bad = f"answer {ans!r} needs 'text' and an integer 'answer_start'"
                        break
                    if not text.strip():
                        bad, reason = (f"answer_start {start}: empty answer text (a blanked gold file? "
                                       "--ignore-answers for prediction input)"), "empty answer text"
                        break
                    if start < 0:
                        bad, reason = f"negative answer_start {start}", "negative answer_start"
                        break
                    if context[start:start + len(text)] != text:
                        bad = (f"answer_start {start} does not match the answer {text!r} (the context "
                               f"has {context[start:start + len(text)]!r} there)")
                        break
                    answers.append({"text": text, "answer_start": start})
                if bad:
                    if not skip_bad:
                        where = _where(path, raw, qa["question"], f"question {qid!r}")
                        raise GraFusionError(f"{where}: question {qid!r}: {bad}; --skip-bad drops "
                                             "such questions")
                    stats[f"{reason} (dropped)"] += 1
                    continue
                kept.append({"id": qid, "question": qa["question"], "passage": len(passages),
                             "answers": answers})
            passages.append({"context": context, "title": article.get("title", "")})
            questions += kept
    if not questions:
        raise GraFusionError(f"{path}: no usable questions")
    return passages, questions, stats


def _usable_questions(path, raw, qas, ids, skip_bad, stats):
    """The questions whose text can be read: not empty, no NUL byte (each an error, or with
    ``skip_bad`` dropped and counted)."""
    kept_qas, kept_ids = [], []
    for qa, qid in zip(qas, ids):
        text = qa["question"]
        reason = ("empty question text" if not text.strip() else
                  "a NUL byte in the question" if "\0" in text else None)
        if reason is None:
            kept_qas.append(qa)
            kept_ids.append(qid)
        elif skip_bad:
            stats[f"{reason} (dropped)"] += 1
        else:
            where = _where(path, raw, qid, f"question {qid!r}")
            raise GraFusionError(f"{where}: question {qid!r}: {reason}; --skip-bad drops such "
                                 "questions")
    return kept_qas, kept_ids


def write_squad(path, passages, questions):
    """Write passages and questions (as :func:`read_squad` returns them) back as SQuAD v1.1
    JSON, atomically: gold files of binarized splits, translations, projections."""
    by_passage = collections.defaultdict(list)
    for q in questions:
        by_passage[q["passage"]].append({"id": q["id"], "question": q["question"],
                                         "answers": q["answers"]})
    data = [{"title": p.get("title", ""), "paragraphs": [{"context": p["context"], "qas": by_passage[k]}]}
            for k, p in enumerate(passages) if by_passage[k]]
    _dump_squad(path, data)


def concat_squad(paths, path):
    """The articles of the SQuAD files ``paths``, in order, as one file ``path``: the gold file
    of shards joined (each :func:`write_squad` article is one passage, so the articles of
    consecutive blocks of passages are those of the whole)."""
    data = []
    for part in paths:
        with open(part, encoding="utf-8") as f:
            data += _articles(json.load(f))
    _dump_squad(path, data)


def _dump_squad(path, data):
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps({"version": "1.1", "data": data}, ensure_ascii=False))  # C encoder: fast


def _articles(dataset_json):
    if isinstance(dataset_json, dict):
        if "data" not in dataset_json:
            raise GraFusionError("gold data has no 'data' field (expected SQuAD v1.1 format)")
        dataset_json = dataset_json["data"]
    if not isinstance(dataset_json, list):
        raise GraFusionError("gold 'data' is not a list (expected SQuAD v1.1 format)")
    return dataset_json


def _gold_questions(dataset_json):
    """``(id, context, [answer texts])`` of every question, in order."""
    for a, article in enumerate(_articles(dataset_json)):
        try:
            paragraphs = article["paragraphs"]
            for p, paragraph in enumerate(paragraphs):
                for q, qa in enumerate(paragraph["qas"]):
                    where = f"data[{a}].paragraphs[{p}].qas[{q}]"
                    if not isinstance(qa, dict) or "id" not in qa or "answers" not in qa:
                        raise GraFusionError(f"gold question {where} has no 'id' or no 'answers'")
                    texts = [ans["text"] for ans in qa["answers"]]
                    if not all(isinstance(t, str) for t in texts):
                        raise GraFusionError(f"gold question {qa['id']!r} has a non-string answer text")
                    yield str(qa["id"]), paragraph["context"], texts
        except (KeyError, TypeError) as e:
            raise GraFusionError(
                f"gold data[{a}] is not in SQuAD v1.1 format (problem with {e})"
            ) from None


def gold_answers(dataset_json):
    """Yield ``(id, [answer texts])`` for every question of loaded SQuAD-format gold data (the
    file's content or its ``data`` list), in order."""
    for qid, _, texts in _gold_questions(dataset_json):
        yield qid, texts


def read_gold(path):
    """``(contexts, answers)``: the context and the answer texts of every question of a SQuAD
    file, by question id."""
    contexts, answers = {}, {}
    try:
        for qid, context, texts in _gold_questions(load_json(path, "gold")):
            contexts[qid], answers[qid] = context, texts
    except GraFusionError as e:
        message = str(e)
        raise GraFusionError(message if path in message else f"{path}: {message}") from None
    return contexts, answers
