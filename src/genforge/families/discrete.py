"""The discrete family: masked (absorbing-state) diffusion over categorical tokens.

For content made of symbols (a level's tiles, a chorale's notes) the forward process replaces
tokens by a MASK symbol instead of adding Gaussian noise; the network sees the partly masked grid
and predicts a distribution over the symbols at every position, trained by cross-entropy on the
masked ones (MaskGIT, Chang et al. 2022; MDLM, Sahoo et al. 2024; Coconet's orderless NADE,
Huang et al. 2017, is the same model). Sampling starts fully masked and reveals positions over a
few steps. Measured against continuous diffusion on one-hot tensors with an argmax decode
(benchmarks/bench_music.py, bench_levels.py): a rare symbol (the one player of a Sokoban level)
is drawn from the predicted distribution instead of having to win an argmax over noise, and
inpainting (harmonising a melody, completing a level) is exact by construction: the given tokens
are never masked.

Tokens come from the content kind (`to_tokens`/`from_tokens`/`token_count`); the loop and
`generate` keep speaking the kind's model tensors, so the rest of genforge is unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import progress
from ..config import RunConfig
from ..errors import ConfigError
from ..modalities import modality_for
from ..models.unet import UNet
from ..options import Declared, between, build, option
from ..sampling import SeededNoise
from .base import ModelSpec, Phase

SAMPLERS = ("ancestral", "confidence")
RULE_ROUNDS = 64  # at most this many rule moves per sample (one per round)


@dataclass(frozen=True)
class DiscreteSampling(Declared):
    """How a masked model reveals its symbols (for generation and inpainting alike)."""

    sampler: str = option("ancestral", "reveal order: ancestral (random positions, each drawn "
                          "from the prediction) or confidence (MaskGIT: the most probable first)",
                          choices=SAMPLERS)
    steps: int = option(32, "reveal steps", check=between(1, 1024))
    temperature: float = option(1.0, "softmax temperature (1: the model's distribution; lower "
                                "is safer and less varied)", check=between(0.0, 5.0, open_low=True))
    rules: bool = option(False, "mend what breaks the content kind's rules, each fix drawn from "
                         "the model (four-part music: parallel fifths and octaves; Sokoban: open "
                         "border, boxes != goals, stuck boxes, unsolvable; Lode Runner: gold out "
                         "of reach)")


def modality_of(spec: ModelSpec):
    """The spec's content kind, refused unless it is made of tokens."""
    modality = modality_for(spec)
    if not modality.has_tokens:
        modality.token_count(spec.item_shape)  # raises the kind's one-line reason
    return modality


class MaskedDenoiser(nn.Module):
    """A U-Net over the token grid [H, W]: input one-hot tokens plus the MASK symbol (channel K),
    output logits over the K symbols at every position. The mask rate is its noise level."""

    def __init__(self, spec: ModelSpec, config: RunConfig):
        super().__init__()
        self.modality = modality_of(spec)
        self.classes = self.modality.token_count(spec.item_shape)
        # Rows that are parts (a chorale's four voices), not space, become channels: every layer
        # then sees all parts at once and the grid is 1 x T (4x fewer positions for music).
        self.parts = spec.item_shape[0] if self.modality.rows_are_parts else 1
        n = config.network
        side = max(spec.item_shape[-1], 1 if self.parts > 1 else spec.item_shape[0])
        self.net = UNet(self.parts * (self.classes + 1), n.model_channels, n.channel_mult,
                        n.num_blocks, n.attn_resolutions, n.dropout, num_classes=spec.num_classes,
                        resolution=side, patch_size=n.patch_size, line=self.parts > 1)

    @property
    def mask_token(self) -> int:
        return self.classes

    def forward(self, tokens: torch.Tensor, rate: torch.Tensor,
                class_labels: torch.Tensor | None = None) -> torch.Tensor:
        """tokens long [B, H, W] (MASK where hidden), rate [B] in [0, 1] -> logits [B, K, H, W]."""
        b, h, w = tokens.shape
        x = F.one_hot(tokens, self.classes + 1).permute(0, 3, 1, 2).float()   # [B, K+1, H, W]
        if self.parts > 1:
            x = x.transpose(1, 2).reshape(b, h * (self.classes + 1), 1, w)
        out = self.net(x, (rate.float() - 0.5) * 3, class_labels)
        if self.parts > 1:
            out = out.reshape(b, h, self.classes + 1, w).transpose(1, 2)
        return out[:, :self.classes]

    def tokens_of(self, x: torch.Tensor) -> torch.Tensor:
        """The kind's model tensor (one-hot planes) -> tokens long [B, H, W] on x's device."""
        items = self.modality.from_model(x.detach().cpu())
        return self.modality.to_tokens(items).to(x.device)


def masked_loss(module: MaskedDenoiser, x: torch.Tensor, labels: torch.Tensor | None,
                generator: torch.Generator, symmetry: bool = False) -> torch.Tensor:
    """Cross-entropy on the masked positions of a batch masked at rates drawn from U(0, 1) (at
    least one position per item is masked); with symmetry each item is first moved by a random
    symmetry of its content kind."""
    tokens = module.tokens_of(x)
    if symmetry:
        tokens = module.modality.augment_tokens(tokens, generator)
    b, device = tokens.shape[0], tokens.device
    rate = torch.rand(b, device=device, generator=generator)
    scores = torch.rand(tokens.shape, device=device, generator=generator)
    masked = scores < rate[:, None, None]
    first = scores.flatten(1).argmin(dim=1)          # the position most likely to be masked
    masked.view(b, -1)[torch.arange(b, device=device), first] = True
    logits = module(torch.where(masked, module.mask_token, tokens), rate, labels)
    ce = F.cross_entropy(logits.float(), tokens, reduction="none")
    # each item's mean over its masked positions, then the mean over items: every masking rate
    # weighs the same, as in the masked-diffusion ELBO (MDLM; linear schedule, up to a constant).
    # The mean over all masked tokens of the batch (MaskGIT) would favour high rates.
    per_item = (ce * masked).flatten(1).sum(1) / masked.flatten(1).sum(1)
    return per_item.mean()


def _uniform(noise: SeededNoise, shape: tuple[int, ...]) -> torch.Tensor:
    """Uniform (0, 1) numbers from each sample's own normal stream (the probability transform)."""
    z = noise(shape)
    return (0.5 * (1 + torch.erf(z / math.sqrt(2)))).clamp(1e-7, 1 - 1e-7)


def reveal_schedule(positions: int, steps: int) -> list[int]:
    """How many positions are still masked after each step: MaskGIT's cosine, ending at 0."""
    counts = [math.floor(positions * math.cos(math.pi / 2 * (s + 1) / steps)) for s in range(steps)]
    return [min(c, positions - s - 1) if positions > s else 0 for s, c in enumerate(counts)]


def _place_unique(tokens, masked, logits, gumbel, unique: tuple[int, ...]):
    """Give each item that lacks one its unique symbol (see sample_tokens), then forbid unique
    symbols in every item's remaining draws. Returns tokens, masked, logits."""
    ids = torch.tensor(unique, device=tokens.device)
    missing = ~torch.isin(tokens, ids).flatten(1).any(1) & masked.flatten(1).any(1)
    if missing.any():
        probs = torch.softmax(logits, dim=1)[:, ids].sum(1)                 # [N, H, W]
        weight = torch.where(masked, probs, torch.zeros_like(probs)).flatten(1)
        weight = weight + masked.flatten(1) * 1e-12                          # never all zero
        # a weighted draw of a square per item with the sample's own noise (Gumbel-max on logs)
        square = (weight.log() + gumbel[:, 0].flatten(1)).argmax(1)
        kind = ids[(logits[:, ids] + gumbel[:, 1:1 + len(ids)]).argmax(1)]   # [N, H, W]
        rows = torch.nonzero(missing)[:, 0]
        flat = tokens.flatten(1).clone()
        flat[rows, square[rows]] = kind.flatten(1)[rows, square[rows]]
        tokens = flat.view_as(tokens)
        masked = masked & ~torch.isin(tokens, ids)
    logits = logits.clone()
    logits[:, ids] = -math.inf
    return tokens, masked, logits


@torch.no_grad()
def sample_tokens(module: MaskedDenoiser, grid: tuple[int, int], noise: SeededNoise,
                  class_labels: torch.Tensor | None = None, *,
                  sampler: str = DiscreteSampling.sampler, steps: int = DiscreteSampling.steps,
                  temperature: float = DiscreteSampling.temperature,
                  given: torch.Tensor | None = None, given_mask: torch.Tensor | None = None,
                  unique: tuple[int, ...] = ()) -> torch.Tensor:
    """Tokens long [N, H, W], one grid per noise stream; positions where given_mask is True keep
    the given tokens throughout (inpainting), the others are revealed over `steps` steps.

    unique: symbols of which each item holds exactly one (a level's player). An item without one
    yet gets it first: its square drawn in proportion to the model's probability of the symbol
    there, its kind among the unique symbols from the model; after that they are never drawn
    again. (Any reveal order is a valid order of a masked model; this one puts the player where
    the model says a player goes, instead of leaving its count to independent draws.)

    ancestral: the positions to reveal are chosen at random and their tokens drawn from the
    predicted distribution (exact ancestral sampling of the model as steps -> positions);
    confidence: tokens are drawn everywhere and the most probable ones kept (MaskGIT), with
    choice noise that anneals to zero.
    """
    device = next(module.parameters()).device
    n, (h, w), k = len(noise), grid, module.classes
    tokens = torch.full((n, h, w), module.mask_token, dtype=torch.long, device=device)
    if given is not None:
        keep = given_mask.to(device).bool()
        tokens = torch.where(keep, given.to(device).long(), tokens)
    masked = tokens == module.mask_token
    free = int(masked.flatten(1).sum(1).max())
    steps = max(1, min(steps, free))
    schedule = reveal_schedule(free, steps)
    for s, left in enumerate(schedule):
        rate = masked.flatten(1).float().mean(1)
        logits = module(tokens, rate, class_labels).float() / max(temperature, 1e-4)
        gumbel = -torch.log(-torch.log(_uniform(noise, (k, h, w)).to(device)))
        if unique:
            tokens, masked, logits = _place_unique(tokens, masked, logits, gumbel, unique)
        drawn = (logits + gumbel).argmax(dim=1)                     # [N, H, W]
        order = _uniform(noise, (h, w)).to(device)
        if sampler == "confidence":
            logp = torch.log_softmax(logits, dim=1).gather(1, drawn[:, None])[:, 0]
            anneal = temperature * (1 - (s + 1) / steps)
            order = logp + anneal * -torch.log(-torch.log(order))
        else:
            order = order.log()                                      # any monotone map will do
        # reveal all but `left` of each item's masked positions: those with the highest order
        score = torch.where(masked, order, torch.full_like(order, -math.inf)).flatten(1)
        reveal = (masked.flatten(1).sum(1) - left).clamp(min=0)
        ranks = score.argsort(dim=1, descending=True).argsort(dim=1)  # 0 = revealed first
        chosen = (ranks < reveal[:, None]).view(n, h, w) & masked
        tokens = torch.where(chosen, drawn, tokens)
        masked = masked & ~chosen
    return tokens


@torch.no_grad()
def apply_rule_moves(module: MaskedDenoiser, tokens: torch.Tensor, move_of, noise: SeededNoise,
                     class_labels: torch.Tensor | None = None, fixed: torch.Tensor | None = None,
                     *, rounds: int = RULE_ROUNDS, temperature: float = 1.0) -> torch.Tensor:
    """Mend broken rules of finished samples, one move per item and round (see sampling.moves).

    move_of(tokens [H, W], fixed [H, W]) -> TokenMove or None is the content kind's rule check.
    Each round hides every open move's span, asks the model once for the whole batch, and draws
    one edit per item with the sample's own noise, in proportion to p(new) / p(old) at the edited
    position (times the same ratio at its `also` positions). Stops when no item has a move or
    after `rounds`; sample i still depends only on seed i (every stream draws its noise every
    round)."""
    n, h, w = tokens.shape
    tokens = tokens.clone()
    fixed = torch.zeros_like(tokens, dtype=torch.bool) if fixed is None else fixed.bool()
    todo = list(range(n))
    with progress.task("rules", total=rounds, unit="round", items=n) as task:
        for round_ in range(rounds):
            # an item without a move is left as it is, so it has none in later rounds either
            grids, given = tokens.cpu().numpy(), fixed.cpu().numpy()
            moves = {i: move_of(grids[i], given[i]) for i in todo}
            gumbel = -torch.log(-torch.log(_uniform(noise, (module.classes, h, w)))).cpu()
            todo = [i for i in todo if moves[i] is not None and moves[i].edits]
            task.update(round_, broken=len(todo))
            if not todo:
                break
            spans = [torch.from_numpy(moves[i].span).to(tokens.device) for i in todo]
            hidden = tokens[todo].clone()
            for j, span in enumerate(spans):
                hidden[j][span] = module.mask_token
            labels = None if class_labels is None else class_labels[todo]
            logits = module(hidden, (hidden == module.mask_token).flatten(1).float().mean(1), labels)
            logp = torch.log_softmax(logits.float() / max(temperature, 1e-4), dim=1).cpu()
            for j, i in enumerate(todo):
                edits = moves[i].edits
                rows, cols, new = torch.tensor([(e.row, e.col, e.token) for e in edits]).T
                now = tokens[i].cpu()
                score = logp[j, new, rows, cols] - logp[j, now[rows, cols], rows, cols] \
                    + gumbel[i, new, rows, cols]
                also = [(k, *place) for k, e in enumerate(edits) for place in e.also]
                if also:  # an edit's further changed symbols count with its first
                    which, r, c, t = torch.tensor(also).T
                    score = score.index_add(0, which, logp[j, t, r, c] - logp[j, now[r, c], r, c])
                edit = edits[int(score.argmax())]
                tokens[i][spans[j]] = torch.as_tensor(edit.span_tokens, dtype=tokens.dtype,
                                                      device=tokens.device)
    return tokens


class DiscreteFamily:
    name = "discrete"
    sampling = DiscreteSampling
    inpainting = DiscreteSampling  # the given symbols are never masked: exact by construction

    def supports(self, modality) -> str | None:
        return None if modality.has_tokens else (
            f"the discrete family models content made of symbols; {modality.name} items are "
            "continuous")

    def build(self, spec: ModelSpec, config: RunConfig) -> nn.Module:
        return MaskedDenoiser(spec, config)

    def exported(self, module: nn.Module) -> nn.Module:
        return module

    def phases(self, config: RunConfig, spec: ModelSpec) -> list[Phase]:
        symmetry = config.augment.augment == "symmetry"
        if symmetry and not modality_of(spec).has_symmetries:
            raise ConfigError(f"--augment symmetry applies to levels; {spec.modality} items have "
                              "no symmetries here (music is transposed by --transpose)")

        def loss(module, x, labels, generator):
            return masked_loss(module, x, labels, generator, symmetry)

        return [Phase("unmask", lambda module: list(module.parameters()), loss)]

    def stats(self, module: nn.Module) -> dict[str, float]:
        return {}

    def latent_shape(self, module: nn.Module, item_shape: tuple[int, ...]) -> tuple[int, ...]:
        raise ConfigError("a discrete (masked diffusion) model has no continuous latent to "
                          "interpolate through: use a diffusion or gan model")

    @torch.no_grad()
    def sample(self, module: MaskedDenoiser, seeds: list[int], class_labels: torch.Tensor | None,
               *, item_shape: tuple[int, ...], device: torch.device | str = "cpu",
               config: RunConfig | None = None, latents: torch.Tensor | None = None,
               spec: ModelSpec | None = None, given: torch.Tensor | None = None,
               given_mask: torch.Tensor | None = None, **options) -> torch.Tensor:
        """The kind's model tensors for the given seeds (sample i depends only on seeds[i]); the
        token grid is spec.item_shape (item_shape, the model tensor's shape, is not needed).
        rules: then mend what breaks the kind's rules with the model's help (apply_rule_moves)."""
        o = build(DiscreteSampling, options)
        if latents is not None:
            self.latent_shape(module, item_shape)
        if spec is None:
            raise ValueError("the discrete family samples on the spec's item grid: pass spec")
        modality = module.modality
        move_of = modality.rule_move_for(tuple(spec.item_shape))
        if o.rules and move_of is None:
            raise ConfigError(f"--rules: these {spec.modality} items have no rules the sampler "
                              "can mend (it knows four-part music, Sokoban and Lode Runner)")
        noise = SeededNoise(seeds, device)
        labels = None if class_labels is None else class_labels.to(device)
        tokens = sample_tokens(module, tuple(spec.item_shape[-2:]), noise, labels,
                               sampler=o.sampler, steps=o.steps, temperature=o.temperature,
                               given=None if given is None else modality.to_tokens(given),
                               given_mask=given_mask, unique=modality.unique_tokens())
        if o.rules:
            tokens = apply_rule_moves(module, tokens, move_of, noise, labels,
                                      None if given_mask is None else given_mask.to(device),
                                      temperature=o.temperature)
        return modality.to_model(modality.from_tokens(tokens.cpu())).to(device)

    @torch.no_grad()
    def inpaint(self, module: MaskedDenoiser, seeds: list[int], given: torch.Tensor,
                given_mask: torch.Tensor, *, spec: ModelSpec, config: RunConfig,
                device: torch.device | str = "cpu", **options) -> torch.Tensor:
        """Integer items: the given symbols kept (never masked), the rest revealed as sample()."""
        x = self.sample(module, seeds, None, item_shape=spec.model_shape, device=device,
                        config=config, spec=spec, given=given, given_mask=given_mask, **options)
        return module.modality.force_given(module.modality.from_model(x.cpu()), given, given_mask)
