"""Rebuild the multilingual part of the bundled sample from XQuAD (Artetxe et al., 2020; CC BY-SA 4.0).

    python examples/sample/build_xquad_sample.py --xquad ../shared/data/xquad [--check]

Writes, for every language of ``LANGS`` (English first):

* ``qa/{train,valid}.LANG.json``: the XQuAD paragraphs ``QA_PARAGRAPHS`` of one article, SQuAD
  v1.1 format, the same question ids in every language (English with XQuAD's own gold answers);
* ``parallel/{train,valid}.en-XX.{en,XX}``: line-aligned sentences for the alignment model and
  pre-training.  A paragraph gives its sentences (rule-based splitter of ``fairseq_grafusion.preprocess.wordseg``)
  only where both languages give the same number of sentences, then its questions (repeated
  questions once).  ``valid`` holds the QA valid paragraphs only; ``train`` the QA train paragraphs
  and the paragraphs of ``EXTRA_ARTICLES``; no text of the valid split is in ``train``.

``--spm`` also retrains ``spm-xquad/`` (a 4000-piece BPE SentencePiece model and its ``dict.txt``, the
stand-in for XLM-R's pair of files) on every text file of ``qa/`` and ``parallel/`` (Romanian
included), once those are written.  ``--check`` rebuilds the text files in memory and fails if a
bundled file differs (the sample is reproducible).
"""
import argparse
import glob
import json
import os
import sys

from fairseq_grafusion.preprocess.wordseg import split_sentences, tokenize

HERE = os.path.dirname(os.path.abspath(__file__))

LANGS = ("en", "de", "zh", "ar")
ARTICLE = "Super_Bowl_50"
QA_PARAGRAPHS = {"train": (0, 1, 2), "valid": (3, 4)}
# XQuAD articles (all 5 paragraphs each) whose text only trains the alignment model
EXTRA_ARTICLES = ("Warsaw", "Normans", "Nikola_Tesla", "Computational_complexity_theory",
                  "Teacher", "Martin_Luther", "Southern_California", "Sky_(United_Kingdom)")


def load(xquad_dir, lang):
    with open(os.path.join(xquad_dir, f"xquad.{lang}.json"), encoding="utf-8") as f:
        return {a["title"]: a["paragraphs"] for a in json.load(f)["data"]}


def sentences(text, lang):
    offsets = tokenize(text, lang)
    starts = split_sentences(text, offsets) + [len(offsets) // 2]
    return [text[offsets[2 * a]:offsets[2 * b - 1]] for a, b in zip(starts, starts[1:])]


def qa_file(paragraphs, indices):
    def qa(q):  # the key order of the Romanian files
        return {"id": q["id"], "question": q["question"], "answers": [
            {"text": a["text"], "answer_start": a["answer_start"]} for a in q["answers"]]}

    return {"version": "1.1", "data": [{"title": ARTICLE, "paragraphs": [
        {"context": paragraphs[i]["context"], "qas": [qa(q) for q in paragraphs[i]["qas"]]}
        for i in indices]}]}


def parallel_lines(en_paragraphs, xx_paragraphs, xx):
    """Sentence pairs of paragraphs whose two versions split into as many sentences, then questions."""
    pairs, seen, kept = [], set(), 0
    for p_en, p_xx in zip(en_paragraphs, xx_paragraphs):
        s_en, s_xx = sentences(p_en["context"], "en"), sentences(p_xx["context"], xx)
        if len(s_en) == len(s_xx):
            pairs += zip(s_en, s_xx)
            kept += 1
        questions = {q["id"]: q["question"] for q in p_xx["qas"]}
        for q in p_en["qas"]:
            pair = (q["question"].strip(), questions[q["id"]].strip())
            if pair not in seen:
                seen.add(pair)
                pairs.append(pair)
    return [(a.replace("\n", " "), b.replace("\n", " ")) for a, b in pairs], kept


def build(xquad_dir):
    """``{relative path: file text}`` of the multilingual sample, and a summary."""
    data = {lang: load(xquad_dir, lang) for lang in LANGS}
    files, notes = {}, []
    for lang in LANGS:
        for split, indices in QA_PARAGRAPHS.items():
            text = json.dumps(qa_file(data[lang][ARTICLE], indices), ensure_ascii=False, indent=1)
            files[f"qa/{split}.{lang}.json"] = text + "\n"
    for xx in LANGS[1:]:
        for split, indices in QA_PARAGRAPHS.items():
            en_pars = [data["en"][ARTICLE][i] for i in indices]
            xx_pars = [data[xx][ARTICLE][i] for i in indices]
            if split == "train":
                for title in EXTRA_ARTICLES:
                    en_pars += data["en"][title]
                    xx_pars += data[xx][title]
            pairs, kept = parallel_lines(en_pars, xx_pars, xx)
            for side, lang in ((0, "en"), (1, xx)):
                files[f"parallel/{split}.en-{xx}.{lang}"] = "".join(p[side] + "\n" for p in pairs)
            notes.append(f"en-{xx} {split}: {len(pairs)} pairs, contexts of {kept}/{len(en_pars)} "
                         "paragraphs kept")
    return files, notes


def build_spm(vocab_size=4000):
    from fairseq_grafusion.preprocess.vocab import train_vocab

    lines = []
    for path in sorted(glob.glob(os.path.join(HERE, "qa", "*.json"))):
        with open(path, encoding="utf-8") as f:
            for article in json.load(f)["data"]:
                for paragraph in article["paragraphs"]:
                    lines += [paragraph["context"]] + [q["question"] for q in paragraph["qas"]]
    for path in sorted(glob.glob(os.path.join(HERE, "parallel", "*"))):
        with open(path, encoding="utf-8") as f:
            lines += f.read().splitlines()
    return train_vocab(lines, os.path.join(HERE, "spm-xquad"), vocab_size=vocab_size)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--xquad", required=True, help="directory with xquad.{en,de,zh,ar}.json")
    parser.add_argument("--check", action="store_true", help="compare with the bundled files")
    parser.add_argument("--spm", action="store_true", help="also retrain spm-xquad/ on the sample's text")
    args = parser.parse_args()
    files, notes = build(args.xquad)
    differ = []
    for rel, text in files.items():
        path = os.path.join(HERE, rel)
        if args.check:
            with open(path, encoding="utf-8") as f:
                if f.read() != text:
                    differ.append(rel)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    if args.spm and not args.check:
        build_spm()
    print("\n".join(notes))
    if differ:
        sys.exit(f"differ from the bundled sample: {', '.join(differ)}")


if __name__ == "__main__":
    main()
