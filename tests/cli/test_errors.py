"""Bad input through fairseq-train: one line naming what is wrong, no traceback."""
import shutil

import numpy as np
import pytest
import torch
from fairseq.data import indexed_dataset

from conftest import restamp_split, run_fairseq, train_args


def fails_with(args, expected):
    proc = run_fairseq("train", *args, check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("fairseq-grafusion: error: "), last
    assert expected in last, last
    return last


@pytest.fixture
def data(marker_data, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(marker_data, copy)
    return copy


def test_missing_file_in_data_dir(data, tmp_path):
    (data / "valid.tgt.word.idx").unlink()
    fails_with(train_args(str(data), str(tmp_path / "ck")), "valid.tgt.word.idx is missing")
    (data / "dict.txt").unlink()
    fails_with(train_args(str(data), str(tmp_path / "ck")), "dict.txt is missing")


def test_edge_outside_its_example(data, tmp_path):
    # replace the alignment edges of the validation split: example 7 gets a target word 999
    prefix = str(data / "valid")
    old = indexed_dataset.MMapIndexedDataset(prefix + ".align")
    edges = [old[i].numpy() for i in range(len(old))]
    del old
    edges[7] = np.array([1, 999])
    builder = indexed_dataset.MMapIndexedDatasetBuilder(prefix + ".align.bin", dtype=np.uint16)
    for e in edges:
        builder.add_item(torch.from_numpy(e))
    builder.finalize(prefix + ".align.idx")
    restamp_split(prefix)
    last = fails_with(train_args(str(data), str(tmp_path / "ck"), updates=5),
                      "example 7 (id 'valid-7'): align edge 0 (1-999) refers to target word 999")
    assert "valid" in last


def test_unknown_graph_value(data, tmp_path):
    fails_with(train_args(str(data), str(tmp_path / "ck"), "--graph", "align,syntax"),
               "unknown --graph value 'align,syntax'")
