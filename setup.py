"""fairseq-grafusion: GraFusion-MRC (cross-lingual MRC with an SA-Graph) as a fairseq plugin."""
from setuptools import find_packages, setup

setup(
    name="fairseq-grafusion",
    version="0.1.0",
    description="GraFusion-MRC for fairseq: cross-lingual reading comprehension with an "
                "alignment + dependency graph bias in the fusion layers",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    # tested on 3.11 (CI), 3.12 and 3.13; fairseq 0.12.2, the release for older Pythons, resolves on
    # 3.10 only with pip < 24.1 (its metadata) and is not tested with the plugin
    python_requires=">=3.11",
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Operating System :: POSIX :: Linux",
        "Intended Audience :: Science/Research",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
    # the data pipeline lives in the repository's top-level preprocess/ folder and is installed as
    # fairseq_grafusion.preprocess: no top-level module named "preprocess" (a common name on PyPI)
    # the bundled sample (examples/sample, about 600 KB) is installed as fairseq_grafusion.sample,
    # so that an installed package runs it from any directory without a checkout
    packages=find_packages(include=["fairseq_grafusion", "fairseq_grafusion.*"])
    + ["fairseq_grafusion.preprocess", "fairseq_grafusion.sample"],
    package_dir={"fairseq_grafusion.preprocess": "preprocess",
                 "fairseq_grafusion.sample": "examples/sample"},
    package_data={"fairseq_grafusion.sample": ["README.md", "*.sh", "qa/*.json", "parallel/*",
                                               "spm/*", "spm-xquad/*"]},
    include_package_data=True,
    install_requires=[
        # fairseq 0.12.2 does not import on Python >= 3.11; fairseq-fixed is the same package (the
        # module "fairseq" and the fairseq-* commands), fixed.  A user's own fairseq:
        # docs/install.md (pip install --no-deps)
        "fairseq-fixed==0.12.3.1",
        # >= 2.6: weights_only checkpoint loading by default (fairseq_grafusion.checkpoint_compat);
        # no upper bound, so that a cluster's newer (CUDA) torch is kept
        "torch>=2.6",
        "numpy",
        # 0.2.2: encode(..., return_type="offset_mapping") (character offsets of every piece)
        "sentencepiece>=0.2.2",
        "tqdm",
        "regex",
        "stanza",
        "eflomal",
        # HuggingFace XLM-R weights in (--pretrained-xlmr) and out (grafusion-export-hf), read and
        # written without pickle; transformers itself is never needed at run time
        "safetensors",
    ],
    extras_require={
        # ruff: the linter of the README's test command (pyproject.toml), pinned so its findings do
        # not change under a checkout
        # transformers: the HuggingFace XLM-R round trip (tests/model/test_hf_xlmr.py, test_export_hf.py)
        "test": ["pytest", "pytest-timeout", "pytest-xdist", "filelock", "matplotlib", "sacremoses", "subword-nmt",
                 "ruff==0.17.6", "transformers>=4.40,<5"],
        # tests/benchmarks/bench_vs_hf.py; transformers 5.x has no question-answering pipeline
        "bench": ["pytest-benchmark", "transformers>=4.40,<5"],
        "plot": ["matplotlib"],
        # --mt-tokenizer moses, --mt-bpe subword_nmt / fastbpe (fastBPE codes are applied through
        # subword-nmt; the fastBPE module itself does not build from PyPI on Python >= 3.11:
        # pip install cython && pip install --no-build-isolation fastBPE), --parallel-format moses
        "mt": ["sacremoses", "subword-nmt"],
        # Thai words with PyThaiNLP's dictionary segmenter (newmm) when Stanza has no Thai model
        "thai": ["pythainlp"],
    },
    entry_points={
        "console_scripts": [
            "grafusion-preprocess = fairseq_grafusion.preprocess.cli:cli_main",
            "grafusion-evaluate = fairseq_grafusion.cli.evaluate:cli_main",
            "grafusion-export-hf = fairseq_grafusion.cli.export_hf:cli_main",
            "grafusion-predict = fairseq_grafusion.cli.predict:cli_main",
            "grafusion-plot-attention = fairseq_grafusion.cli.plot_attention:cli_main",
            "grafusion-results = fairseq_grafusion.cli.results:cli_main",
            "grafusion-user-dir = fairseq_grafusion.cli.user_dir:cli_main",
        ],
    },
)
