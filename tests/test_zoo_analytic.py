"""The zoo through the PyTorch frontend: the paper's 12 rows and every published end-point.

Expected values are the published ones (written in test_zoo_slim.py, from the Distill article
and its linked per-end-point table), also verified there by an autograd oracle.
"""

import pytest

pytest.importorskip("torch")

from test_zoo_slim import PAPER, PUBLISHED, factory  # noqa: E402

from analytic import analyze  # noqa: E402
from experiments.models.slim import PAPER_ENDPOINT  # noqa: E402


def rsp(result, endpoint):
    row = result.node(endpoint)
    assert len(set(row.size)) == len(set(row.stride)) == len(set(row.padding)) == 1, row
    return row.size[0], row.stride[0], row.padding[0]


@pytest.mark.parametrize("model", list(PUBLISHED))
def test_every_published_endpoint_analytically(model):
    rows = PUBLISHED[model]
    net = factory(model)()
    for n, p_index in ((224, 2), (321, 3)):
        result = analyze(net, (1, 3, n, n))
        assert result.aligned, result.misalignments[:1]
        for endpoint, row in rows.items():
            assert rsp(result, endpoint) == (row[0], row[1], row[p_index]), (endpoint, n)
        if n == 224 and model in PAPER:  # the paper's table row, at its final end-point
            assert rsp(result, PAPER_ENDPOINT[model]) == PAPER[model]
