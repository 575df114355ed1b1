"""Stage ``pairs``: pair the English and the target QA file by question id into *units*.

A unit (:class:`.unit.Unit`) is a text pair processed by the later stages: a passage pair
(``kind "p"``) or a question pair (``kind "q"``, pointing to its passage unit and carrying both
sides' answers).  Passages shared by several questions are units once, so they are segmented,
aligned and parsed once.  Units are grouped by passage (passage unit first, then its
questions), which lets a shard be a set of passages with all their questions.

A question present on one side only is translated from the other side when a translator is
given (its passage too, once per passage), and flagged so that the ``align`` stage projects its
answer through the word alignment; without a translator it is dropped and reported.
"""
import collections

from .translate import translate_texts
from .unit import Unit

SHOW_IDS = 5


def _passage_key(src_pid, tgt_pid):
    return (src_pid, tgt_pid)


UNKNOWN_WARN = 0.05  # share of <unk> source tokens that says the tokenizer / BPE options are wrong


def _count_unknown(translator, lang_from, lang_to, side, stats, report):
    """Count the source tokens a :class:`.translate.Translator` met and how many were ``<unk>``;
    a note when too many were (the model's tokenizer or BPE is missing or wrong)."""
    if not hasattr(translator, "unknown"):
        return
    stats[f"{lang_from}->{lang_to} source tokens"] = translator.tokens
    stats[f"{lang_from}->{lang_to} source tokens <unk>"] = translator.unknown
    if translator.unknown > UNKNOWN_WARN * max(translator.tokens, 1):
        role = "train" if side == "tgt" else "test"
        report.append(f"{translator.unknown} of {translator.tokens} source tokens of the "
                      f"{lang_from}->{lang_to} model are <unk>: check --mt-{role}-tokenizer and "
                      f"--mt-{role}-bpe / --mt-{role}-bpe-codes (the model's own preprocessing)")


def make_units(src, tgt, src_lang, tgt_lang, translator_for=None, stats=None):
    """Units from ``src`` / ``tgt`` = ``(passages, questions)`` or None (side to translate).

    ``translator_for(from_lang, to_lang)`` returns an object with ``translate(list)``; it is
    called only when some question needs translating.  Returns ``(units, report)``.
    """
    stats = stats if stats is not None else collections.Counter()
    sides = {"src": src, "tgt": tgt}
    by_id = {side: ({q["id"]: q for q in data[1]} if data else {}) for side, data in sides.items()}
    order = list(by_id["src"]) + [i for i in by_id["tgt"] if i not in by_id["src"]]
    only = {side: [i for i in order if i in by_id[side] and i not in by_id[other]]
            for side, other in (("src", "tgt"), ("tgt", "src"))}
    stats["questions in source file"] = len(by_id["src"])
    stats["questions in target file"] = len(by_id["tgt"])
    report = []
    to_translate = {}
    for side, other in (("src", "tgt"), ("tgt", "src")):
        missing = only[other]  # present on `other` only: `side` is missing
        if not missing:
            continue
        lang_from = src_lang if other == "src" else tgt_lang
        lang_to = tgt_lang if other == "src" else src_lang
        what = "target" if side == "tgt" else "source"
        ids = ", ".join(missing[:SHOW_IDS]) + (", ..." if len(missing) > SHOW_IDS else "")
        if translator_for is None:
            stats[f"unpaired: no {what} side, no --mt-model (dropped)"] += len(missing)
            report.append(f"{len(missing)} question ids have no {what} side and were dropped "
                          f"(no --mt-model): {ids}")
            continue
        report.append(f"{len(missing)} question ids have no {what} side: translated "
                      f"{lang_from}->{lang_to} (translate-{'train' if side == 'tgt' else 'test'}): {ids}")
        to_translate[side] = (missing, translator_for(lang_from, lang_to), lang_from, lang_to)

    # translated passages and questions, per missing side
    made = {}
    for side, (missing, translator, lang_from, lang_to) in to_translate.items():
        other = "tgt" if side == "src" else "src"
        passages = sides[other][0]
        pids = sorted({by_id[other][i]["passage"] for i in missing})
        ptext = translate_texts(translator, [passages[p]["context"] for p in pids], lang_from, lang_to)
        qtext = translate_texts(translator, [by_id[other][i]["question"] for i in missing], lang_from, lang_to)
        made[side] = ({p: t for p, t in zip(pids, ptext)}, dict(zip(missing, qtext)))
        _count_unknown(translator, lang_from, lang_to, side, stats, report)
        stats[f"questions translated to the {'target' if side == 'tgt' else 'source'} side"] += len(missing)
        stats["passages translated"] += len(pids)

    # passage pairs in first-seen order, each followed by its questions
    groups = collections.OrderedDict()
    for qid in order:
        if qid in only["src"] and "tgt" not in made or qid in only["tgt"] and "src" not in made:
            continue
        entry = {}
        for side in ("src", "tgt"):
            q = by_id[side].get(qid)
            if q is not None:
                entry[side] = (("orig", q["passage"]), q["question"], q["answers"], False)
            else:
                other = "tgt" if side == "src" else "src"
                pid = by_id[other][qid]["passage"]
                entry[side] = (("mt", pid), made[side][1][qid], [], True)
        key = (entry["src"][0], entry["tgt"][0])
        groups.setdefault(key, []).append((qid, entry))
    units = []
    for g, (key, members) in enumerate(groups.items()):
        texts = {}
        for side, (kind, pid) in zip(("src", "tgt"), key):
            if kind == "orig":
                texts[side] = sides[side][0][pid]["context"]
            else:
                texts[side] = made[side][0][pid]
        puid = f"p{g}"
        units.append(Unit("p", puid, g, texts["src"], texts["tgt"]))
        for qid, entry in members:
            project = next((s for s in ("src", "tgt") if entry[s][3]), None)
            units.append(Unit("q", qid, g, entry["src"][1], entry["tgt"][1], passage=puid,
                              answers={"src": entry["src"][2], "tgt": entry["tgt"][2]},
                              project=project))
    stats["question pairs out"] = sum(u.kind == "q" for u in units)
    stats["passage pairs out"] = sum(u.kind == "p" for u in units)
    return units, report
