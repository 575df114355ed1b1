"""fairseq-grafusion: GraFusion-MRC (cross-lingual MRC with an SA-Graph) as a fairseq plugin."""
from setuptools import find_packages, setup

setup(
    name="fairseq-grafusion",
    version="0.1.0",
    description="GraFusion-MRC for fairseq: cross-lingual reading comprehension with an "
                "alignment + dependency graph bias in the fusion layers",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.8",
    # the data pipeline lives in the repository's top-level preprocess/ folder and is installed as
    # fairseq_grafusion.preprocess: no top-level module named "preprocess" (a common name on PyPI)
    packages=find_packages(include=["fairseq_grafusion", "fairseq_grafusion.*"])
    + ["fairseq_grafusion.preprocess"],
    package_dir={"fairseq_grafusion.preprocess": "preprocess"},
    include_package_data=True,
    install_requires=[
        # fairseq 0.12.2 does not import on Python >= 3.11; fairseq-fixed is the same package fixed
        'fairseq==0.12.2; python_version < "3.11"',
        'fairseq-fixed==0.12.3.1; python_version >= "3.11"',
        # >= 2.6: weights_only checkpoint loading by default (fairseq_grafusion.checkpoint_compat);
        # satisfied by the CPU wheel 2.13.0+cpu; a cluster's own CUDA build in range is kept
        "torch>=2.6,<=2.13.0",
        "numpy",
        # 0.2.2: encode(..., return_type="offset_mapping") (character offsets of every piece)
        "sentencepiece>=0.2.2",
        "tqdm",
        "regex",
        "stanza",
        "eflomal",
    ],
    extras_require={
        "test": ["pytest", "pytest-timeout", "matplotlib"],
        # tests/benchmarks/bench_vs_hf.py; transformers 5.x has no question-answering pipeline
        "bench": ["pytest-benchmark", "transformers>=4.40,<5"],
        "plot": ["matplotlib"],
        # Thai words with PyThaiNLP's dictionary segmenter (newmm) when Stanza has no Thai model
        "thai": ["pythainlp"],
    },
    entry_points={
        "console_scripts": [
            "grafusion-preprocess = fairseq_grafusion.preprocess.cli:cli_main",
            "grafusion-evaluate = fairseq_grafusion.cli.evaluate:cli_main",
            "grafusion-predict = fairseq_grafusion.cli.predict:cli_main",
            "grafusion-plot-attention = fairseq_grafusion.cli.plot_attention:cli_main",
            "grafusion-results = fairseq_grafusion.cli.results:cli_main",
            "grafusion-user-dir = fairseq_grafusion.cli.user_dir:cli_main",
        ],
    },
)
