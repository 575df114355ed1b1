"""``grafusion-results``: Table 1 / 2 layout from several runs, mean ± std, Avg., n/a cells."""
import json
import statistics
import subprocess
import sys

import pytest

from conftest import REPO
from fairseq_grafusion.cli import results
from fairseq_grafusion.errors import GraFusionError

LANGS = ("en", "ar", "bn", "fi", "sw")


def write_scores(path, f1s, ems, metric="squad"):
    """A file as ``grafusion-evaluate --json`` writes it."""
    languages = {lang: {"f1": f, "exact_match": e, "total": 10, "missing": 0, "metric": metric}
                 for lang, f, e in zip(LANGS, f1s, ems)}
    with open(path, "w") as f:
        json.dump({"metric": "squad", "languages": languages, "avg": {}}, f)
    return str(path)


def test_mean_std_avg_and_not_applicable_cells(tmp_path):
    runs = {  # two variants, three seeds each: (F1 per language, EM per language)
        "FILTER": [([70, 60, 50, 65, 72], [55, 40, 35, 50, 60]),
                   ([72, 61, 52, 66, 70], [57, 42, 36, 52, 58]),
                   ([71, 59, 51, 64, 74], [56, 41, 34, 51, 61])],
        "+ad": [([73, 62, 40, 68, 30], [58, 44, 20, 53, 10]),
                ([74, 63, 41, 69, 31], [59, 45, 21, 54, 11]),
                ([72, 64, 42, 67, 32], [57, 46, 22, 55, 12])],
    }
    rows = []
    for name, seeds in runs.items():
        paths = [write_scores(tmp_path / f"{name}.{k}.json", f, e) for k, (f, e) in enumerate(seeds)]
        rows += ["--row", name] + paths
    md = tmp_path / "table.md"
    languages, table = results.main(rows + ["--no-parser", "bn", "sw", "--output", str(md),
                                            "--json", str(tmp_path / "table.json")])
    assert languages == list(LANGS)
    filt, ad = table
    for k, lang in enumerate(LANGS):
        f1s = [s[0][k] for s in runs["FILTER"]]
        assert filt["cells"][lang]["f1"] == pytest.approx((statistics.mean(f1s), statistics.stdev(f1s)))
    # +ad has no figure for the languages without a parser, and its Avg. is over the others
    assert ad["cells"]["bn"] is None and ad["cells"]["sw"] is None
    avgs = [statistics.mean(s[0][k] for k in (0, 1, 3)) for s in runs["+ad"]]
    assert ad["avg"]["f1"] == pytest.approx((statistics.mean(avgs), statistics.stdev(avgs)))
    filt_avgs = [statistics.mean(s[0]) for s in runs["FILTER"]]
    assert filt["avg"]["f1"] == pytest.approx((statistics.mean(filt_avgs), statistics.stdev(filt_avgs)))
    text = md.read_text()
    assert "| Model | en | ar | bn | fi | sw | Avg. | runs |" in text
    assert "| +ad | 73.0 ± 1.0 / 58.0 ± 1.0 | 63.0 ± 1.0 / 45.0 ± 1.0 | n/a |" in text
    assert "n/a: no dependency parser" in text
    assert "Scored with SQuAD v1.1's official script (squad): en, ar, bn, fi, sw." in text
    saved = json.loads((tmp_path / "table.json").read_text())
    assert saved["rows"][1]["cells"]["bn"] is None and saved["rows"][0]["runs"] == 3
    assert saved["metrics"] == {lang: "squad" for lang in LANGS}


def test_runs_scored_with_different_metrics_are_not_averaged(tmp_path):
    """The same answers score tens of points apart under MLQA's and SQuAD's rules: a column that
    would mix the two is refused, naming the language and the files."""
    a = write_scores(tmp_path / "a.json", [70] * 5, [50] * 5, metric="squad")
    b = write_scores(tmp_path / "b.json", [71] * 5, [51] * 5, metric="mlqa")
    with pytest.raises(GraFusionError, match=r"language en: the runs were scored differently "
                       r"\(squad: .*a.json; mlqa: .*b.json\)"):
        results.main(["--row", "x", a, b])
    with pytest.raises(GraFusionError, match="scored differently"):  # across rows too
        results.main(["--row", "x", a, "--row", "y", b])


def test_a_run_missing_a_language_is_named(tmp_path):
    good = write_scores(tmp_path / "a.json", [1, 2, 3, 4, 5], [1, 2, 3, 4, 5])
    data = json.loads(open(good).read())
    del data["languages"]["fi"]
    bad = tmp_path / "b.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(GraFusionError, match=r"row 'FILTER': .*b.json has no score for fi"):
        results.main(["--row", "FILTER", good, str(bad)])
    (tmp_path / "c.json").write_text("{}")
    with pytest.raises(GraFusionError, match=r"c.json: no 'languages' object"):
        results.main(["--row", "x", str(tmp_path / "c.json")])
    proc = subprocess.run([sys.executable, "-m", "fairseq_grafusion.cli.results", "--row", "x"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "grafusion-results: error: --row x: give the row name, then its scores files"]
