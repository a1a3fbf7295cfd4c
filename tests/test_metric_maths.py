"""The metric maths against independent formulas and peers, on real Fashion-MNIST features.

Features here are 7x7 average-pooled pixels (49 numbers per image): real, simple, and cheap
enough that every comparison runs in a second. The learned encoder is tested in test_metrics.py.
"""
import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from genforge.config import DataConfig
from genforge.errors import ConfigError
from genforge.metrics import maths
from genforge.modalities import IMAGE

from peers import import_torch_fidelity


@pytest.fixture(scope="module")
def fashion():
    return IMAGE.open(DataConfig(source="fashion-mnist-sample"))


def pooled(items: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(items.float() / 255, 4).flatten(1)


@pytest.fixture(scope="module")
def halves(fashion):
    perm = torch.randperm(len(fashion), generator=torch.Generator().manual_seed(0))
    features = pooled(fashion.items[perm])
    return features[:2000], features[2000:]


def scipy_fd(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_fd_equals_scipy_sqrtm_and_torch_fidelity(halves):
    a, b = halves
    b = b + 0.02  # a visible shift, so the comparison is not between two near-zeros
    ours = maths.frechet_distance(maths.feature_statistics(a), maths.feature_statistics(b))
    assert ours == pytest.approx(scipy_fd(a.double().numpy(), b.double().numpy()), rel=1e-9)
    tf = import_torch_fidelity()
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    theirs = fid_statistics_to_metric(fid_features_to_statistics(a.double()),
                                      fid_features_to_statistics(b.double()), verbose=False)
    assert ours == pytest.approx(theirs[tf.KEY_METRIC_FID], rel=1e-9)


def test_fd_of_a_set_with_itself_is_zero_up_to_rounding_and_kept_raw(halves):
    stats = maths.feature_statistics(halves[0])
    value = maths.frechet_distance(stats, stats)
    assert abs(value) < 1e-10
    assert isinstance(value, float)


def test_fd_refuses_fewer_samples_than_dimensions():
    with pytest.raises(ConfigError, match=r"more generated samples than feature dimensions \(40 samples, 49"):
        maths.check_fd_sample_size(40, 49, "generated")


def test_trace_sqrt_survives_singular_covariances():
    # rank-deficient covariances (fewer samples than dimensions) make scipy's sqrtm complex;
    # the symmetric route stays real and finite
    torch.manual_seed(0)
    x, y = torch.randn(10, 64, dtype=torch.float64), torch.randn(10, 64, dtype=torch.float64)
    value = maths.trace_sqrt_product(torch.cov(x.T), torch.cov(y.T))
    assert np.isfinite(value) and value > 0


def test_kid_subset_value_equals_torch_fidelity(halves):
    a, b = (f.double()[:500] for f in halves)
    import_torch_fidelity()
    from torch_fidelity.metric_kid import kernel_mmd
    theirs = kernel_mmd(a.numpy(), b.numpy(), kid_kernel="poly", kid_kernel_poly_degree=3,
                        kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1)
    assert maths.mmd2_unbiased(a, b) == pytest.approx(float(theirs), rel=1e-9, abs=1e-12)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_another(halves):
    a, b = halves
    same = maths.kernel_inception_distance(a, b, subsets=20, subset_size=500)
    shifted = maths.kernel_inception_distance(a, b + 0.05, subsets=20, subset_size=500)
    assert abs(float(same.mean())) < 3 * float(same.std()) / 20 ** 0.5 + 1e-4
    assert float(shifted.mean()) > 20 * abs(float(same.mean()))


def brute_force_prdc(gen: torch.Tensor, ref: torch.Tensor, k_pr=3, k_dc=5):
    g, r = gen.double(), ref.double()
    d_rr, d_gg, d_rg = torch.cdist(r, r), torch.cdist(g, g), torch.cdist(r, g)
    r_pr = d_rr.kthvalue(k_pr + 1, 1).values
    r_dc = d_rr.kthvalue(k_dc + 1, 1).values
    g_pr = d_gg.kthvalue(k_pr + 1, 1).values
    return ((d_rg < r_pr[:, None]).any(0).double().mean().item(),
            (d_rg < g_pr[None, :]).any(1).double().mean().item(),
            ((d_rg < r_dc[:, None]).double().sum(0) / k_dc).mean().item(),
            (d_rg.min(1).values < r_dc).double().mean().item())


def test_prdc_equals_the_float64_brute_force(halves):
    gen, ref = halves[0][:700] * 1.1, halves[1][:900]
    m = maths.manifold_indicators(gen, ref)
    ours = (m.precision.mean().item(), m.recall.mean().item(), m.density.mean().item(),
            m.coverage.mean().item())
    assert ours == pytest.approx(brute_force_prdc(gen, ref), abs=1e-12)


def test_precision_recall_agree_with_torch_fidelity(halves):
    gen, ref = halves[0][:600] * 1.1, halves[1][:600]
    import_torch_fidelity()
    from torch_fidelity.metric_prc import calculate_precision_recall_full
    precision, recall = calculate_precision_recall_full(gen, ref, neighborhood=3)
    m = maths.manifold_indicators(gen, ref)
    # torch-fidelity counts a point on a ball's boundary as inside (<=); only ties can differ
    assert m.precision.mean().item() == pytest.approx(precision, abs=2 / 600)
    assert m.recall.mean().item() == pytest.approx(recall, abs=2 / 600)


def test_prdc_near_one_for_two_samples_of_one_set(halves):
    # k-NN balls from 2,000 points under-cover a 49-dimensional distribution a little, so
    # precision and recall sit near 0.86 (Naeem et al. 2020 made density/coverage for this);
    # a different distribution drops them far lower (below)
    m = maths.manifold_indicators(*halves)
    assert m.precision.mean() > 0.8 and m.recall.mean() > 0.8
    assert 0.9 < m.density.mean() < 1.1 and m.coverage.mean() > 0.95
    # items 30% darker still look like some (dark) garments, so precision stays high, but they
    # miss most of the data: recall and coverage fall
    darker = maths.manifold_indicators(halves[0] * 0.7, halves[1])
    assert darker.recall.mean() < 0.4 and darker.coverage.mean() < 0.7


def test_float32_search_makes_float64_decisions():
    # points on a fine lattice far from the origin: squared distances cancel catastrophically in
    # float32 without centring, and many distances tie with radii
    grid = torch.stack(torch.meshgrid(torch.arange(12.0), torch.arange(12.0), indexing="ij"), -1)
    points = grid.reshape(-1, 2) * 1e-3 + 1e3
    gen = points[::2] + 1e-4
    m = maths.manifold_indicators(gen, points)
    ours = (m.precision.mean().item(), m.recall.mean().item(), m.density.mean().item(),
            m.coverage.mean().item())
    assert ours == pytest.approx(brute_force_prdc(gen, points), abs=1e-12)


def test_nearest_training_items_find_copies(fashion):
    train = pooled(fashion.items[:1500])
    fresh = pooled(fashion.items[3000:3100])
    copies = train[[5, 50, 500]]
    result = maths.nearest_training_items(torch.cat([fresh, copies]), train)
    assert result.index[-3:].tolist() == [5, 50, 500]
    assert (result.ratio[-3:] == 0).all() and (result.normalised[-3:] == 0).all()
    assert (result.ratio[:100] > 1 / 3).float().mean() > 0.95


def test_intervals_are_sane():
    low, high = maths.wilson_interval(0, 100)
    assert low == 0 and 0 < high < 0.05
    low, high = maths.wilson_interval(100, 100)
    assert 0.95 < low < 1 and high == pytest.approx(1)
    low, high = maths.mean_interval(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64))
    assert low < 2.5 < high


def test_bootstrap_interval_contains_the_estimate(halves):
    a, b = halves
    ref = maths.feature_statistics(b)
    value = maths.frechet_distance(maths.feature_statistics(a), ref)
    low, high = maths.bootstrap_fd_interval(a.double(), ref, resamples=20)
    # resampling with replacement inflates FD a little; the interval brackets the estimate's scale
    assert low < high and low < value * 1.5 and high > value * 0.5
