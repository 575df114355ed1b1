"""Gold answers reproduced from XLM-R's token stream, by vocabulary size, before / after the
clause-punctuation cut (``preprocess/encode.py: answer_ends``).

    python tests/benchmarks/reproduction_by_vocab.py [--sizes 3000 4000 5000 6000 8000]

Per size, a unigram ``nmt_nfkc`` SentencePiece model is trained (as ``tests/preprocess/test_preprocess_tokens.py``
does) on the XQuAD files of ``../shared/data/xquad`` and the sample's QA files; each gold answer
is mapped to tokens by characters and cut back out of the context from the token offsets that
``binarize`` stores.  Prints the share reproduced exactly per file.
"""
import argparse
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(os.path.dirname(HERE), "preprocess"), os.path.dirname(HERE)]

import test_preprocess_tokens as T  # noqa: E402

from fairseq_grafusion.preprocess.encode import Encoder  # noqa: E402


def rates(enc, data, cut):
    """``{file: % reproduced}`` with (``cut``) or without the clause-punctuation cut."""
    return {name: 100 * T.reproduction(enc, examples, lang, cut)[0] / len(examples)
            for name, (lang, examples) in sorted(data.items())}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[3000, 4000, 5000, 6000, 8000])
    args = p.parse_args()
    data = T.datasets()
    lines = sorted({t for _, examples in data.values() for _, c, q, _ in examples for t in (c, q)})
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            out = os.path.join(tmp, str(size))
            os.makedirs(out)
            enc = Encoder(*T.train_spm(lines, out, size, model_type="unigram",
                                       character_coverage=0.9995, hard_vocab_limit=False))
            before, after = rates(enc, data, False), rates(enc, data, True)
            print(f"{size} pieces: " + ", ".join(f"{k} {before[k]:.2f} -> {after[k]:.2f}" for k in after),
                  flush=True)


if __name__ == "__main__":
    main()
