"""TyDiQA-GoldP's files by ISO language code, ids and answers kept as published.

    python examples/tydiqa/split_by_language.py --tydiqa downloads/tydiqa --out downloads/tydiqa

reads ``tydiqa-goldp-v1.1-train.json`` (all languages in one file, ids ``<language>-<n>-<k>``) and
``tydiqa-goldp-v1.1-dev/tydiqa-goldp-dev-<language>.json`` (the extracted dev archive) and writes
``train.<iso>.json`` and ``dev.<iso>.json``.  XTREME's own preparation (``utils_preprocess.py
--task tydiqa``) cuts every id down to its last ``-`` piece, so ids repeat and no longer match
the translations, and blanks the dev answers; do not use its output for this recipe.
"""
import argparse
import json
import os

ISO = {"arabic": "ar", "bengali": "bn", "english": "en", "finnish": "fi", "indonesian": "id",
       "korean": "ko", "russian": "ru", "swahili": "sw", "telugu": "te"}


def write(path, articles, version):
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump({"version": version, "data": articles}, f, ensure_ascii=False)
    os.replace(path + ".tmp", path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tydiqa", required=True, help="directory with the downloaded files")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.tydiqa, "tydiqa-goldp-v1.1-train.json"), encoding="utf-8") as f:
        train = json.load(f)
    by_lang = {iso: [] for iso in ISO.values()}
    for article in train["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                iso = ISO[qa["id"].split("-", 1)[0]]
                by_lang[iso].append({"title": article.get("title", ""), "paragraphs": [
                    {"context": paragraph["context"], "qas": [qa]}]})
    for iso, articles in by_lang.items():
        write(os.path.join(args.out, f"train.{iso}.json"), articles, train.get("version", "1.1"))
        print(f"train.{iso}.json: {len(articles)} questions")
    for name, iso in ISO.items():
        path = os.path.join(args.tydiqa, "tydiqa-goldp-v1.1-dev", f"tydiqa-goldp-dev-{name}.json")
        with open(path, encoding="utf-8") as f:
            dev = json.load(f)
        write(os.path.join(args.out, f"dev.{iso}.json"), dev["data"], dev.get("version", "1.1"))
        n = sum(len(p["qas"]) for a in dev["data"] for p in a["paragraphs"])
        print(f"dev.{iso}.json: {n} questions")


if __name__ == "__main__":
    main()
