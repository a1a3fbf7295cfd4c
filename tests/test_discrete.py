"""The discrete family (masked diffusion over symbols): tokens round trip, the model learns a
tiny set of levels, sampling is per seed, inpainting keeps what was given, and it works through
the CLI for levels and music."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import genforge
from genforge.cli import main
from genforge.config import make_config
from genforge.errors import ConfigError
from genforge.families import FAMILIES
from genforge.families.base import ModelSpec
from genforge.families.discrete import MaskedDenoiser, masked_loss, reveal_schedule
from genforge.generation import resolve_sampling
from genforge.levels import formats, sokoban
from genforge.modalities import LEVEL, MUSIC
from genforge.music import corpus, dataset
from genforge.music import representation as rep
from genforge.music.harmonize import read_given

TINY = ["--family", "discrete", "--model-channels", "16", "--channel-mult", "1,2",
        "--num-blocks", "1", "--attn-resolutions", "", "--batch-size", "4",
        "--preview-count", "2", "--progress", "none", "--device", "cpu"]
LEVELS = "tests/fixtures/levels/sokoban/tiny.xsb"
ROOMS = ["#####\n#@$.#\n#####", "#####\n#.$@#\n#####"]  # two 3x5 one-box rooms


def level_spec(shape=(3, 5), legend=formats.SOKOBAN) -> ModelSpec:
    vocab = legend.to_dict()
    return ModelSpec("level", shape, (), LEVEL.bind(vocab).model_shape(shape), vocab)


def untrained_levels(spec: ModelSpec, n: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """n levels (seeds 0..n-1) of an untrained model (torch seed 0), as drawn and with --rules."""
    torch.manual_seed(0)
    modality = LEVEL.bind(spec.vocabulary)
    module = MaskedDenoiser(spec, tiny_config(16)).eval()

    def draw(rules):
        return modality.from_model(FAMILIES["discrete"].sample(
            module, list(range(n)), None, steps=steps, rules=rules, item_shape=spec.model_shape,
            spec=spec)).numpy()
    return draw(False), draw(True)


def tiny_config(channels=32):
    return make_config(None, {"network": {"model_channels": channels, "channel_mult": (1, 2),
                                          "num_blocks": 1}}, family="discrete")


def test_music_tokens_round_trip_real_chorales():
    piece = corpus.read_corpus(corpus.BACH).pieces[:3]
    items = dataset.crop_pieces(piece, 4, 1).items
    tokens = MUSIC.to_tokens(torch.from_numpy(items))
    assert tokens.shape == items.shape and int(tokens.max()) < rep.SATB_TOKENS
    assert (MUSIC.from_tokens(tokens).numpy() == rep.canonical_satb(items)).all()
    # a held note and the same note attacked are different symbols
    held, attacked = rep.pitch_code(60, False), rep.pitch_code(60, True)
    assert MUSIC.to_tokens(torch.tensor([[[attacked, held, attacked]] * 4])).tolist()[0][0] == \
        [60 - rep.PITCH_LOW + 1 + rep.PITCH_BINS, 60 - rep.PITCH_LOW + 1,
         60 - rep.PITCH_LOW + 1 + rep.PITCH_BINS]


def test_level_tokens_are_the_tiles():
    legend = formats.SOKOBAN
    grid = torch.from_numpy(np.stack([formats.parse_grid(r, legend) for r in ROOMS]))
    modality = LEVEL.bind(legend.to_dict())
    assert modality.token_count((3, 5)) == legend.size
    assert (modality.from_tokens(modality.to_tokens(grid)) == grid).all()


@pytest.mark.parametrize("positions,steps", [(100, 32), (5, 32), (256, 1), (7, 7)])
def test_reveal_schedule_reveals_at_least_one_each_step_and_ends_empty(positions, steps):
    left = reveal_schedule(positions, min(steps, positions))
    assert left[-1] == 0 and all(a > b for a, b in zip([positions, *left], left))


def test_the_masked_model_learns_two_rooms_and_samples_per_seed():
    torch.manual_seed(0)
    legend, spec = formats.SOKOBAN, level_spec()
    rooms = np.stack([formats.parse_grid(r, legend) for r in ROOMS])
    modality = LEVEL.bind(legend.to_dict())
    x = modality.to_model(torch.from_numpy(rooms).repeat(8, 1, 1))
    module = MaskedDenoiser(spec, tiny_config())
    opt = torch.optim.Adam(module.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        loss = masked_loss(module, x, None, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2
    family = FAMILIES["discrete"]
    out = modality.from_model(family.sample(module.eval(), list(range(8)), None,
                                            item_shape=spec.model_shape, spec=spec))
    copies = [any((o.numpy() == r).all() for r in rooms) for o in out]
    assert sum(copies) >= 7  # the two rooms, not a blend of them
    # sample i depends on its seed only, not on the batch it is drawn in
    again = modality.from_model(family.sample(module, [5, 3], None, item_shape=spec.model_shape,
                                              spec=spec))
    assert (again[0] == out[5]).all() and (again[1] == out[3]).all()
    # inpainting: the given tiles stay exactly, even ones the model would never draw there
    given = torch.from_numpy(rooms[:1]).repeat(4, 1, 1)
    given[:, 1, 2] = legend.index("*")
    mask = torch.zeros_like(given, dtype=torch.bool)
    mask[:, :, 1:3] = True
    filled = modality.from_model(family.sample(module, list(range(4)), None,
                                               item_shape=spec.model_shape, spec=spec,
                                               given=given, given_mask=mask))
    assert (filled[mask] == given[mask]).all()
    for sampler in ("confidence", "ancestral"):
        with pytest.raises(ConfigError, match="temperature"):
            family.sample(module, [0], None, item_shape=spec.model_shape, spec=spec,
                          sampler=sampler, temperature=0)
    with pytest.raises(ConfigError, match="sampler: 'heun' is not one of ancestral, confidence"):
        family.sample(module, [0], None, item_shape=spec.model_shape, spec=spec, sampler="heun")


def test_images_and_interpolation_are_refused_in_one_line():
    spec = ModelSpec("image", (1, 8, 8))
    with pytest.raises(ConfigError, match="discrete family models content made of symbols"):
        MaskedDenoiser(spec, tiny_config())
    with pytest.raises(ConfigError, match="no continuous latent"):
        FAMILIES["discrete"].latent_shape(None, (7, 3, 5))


def test_levels_through_the_cli(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", LEVELS, "--run", str(run), "--steps", "2", "--level-size", "8",
                 *TINY]) == 0
    model = genforge.load(run / "model", device="cpu")
    assert model.info()["family"] == "discrete"
    out = tmp_path / "levels"
    assert main(["generate", str(run / "model"), "-n", "3", "--steps", "4", "--sampler",
                 "confidence", "--temperature", "0.8", "--device", "cpu", "--out", str(out)]) == 0
    assert len(list(out.glob("*.xsb"))) == 3
    ruled = tmp_path / "ruled"
    assert main(["generate", str(run / "model"), "-n", "3", "--steps", "4", "--rules",
                 "--device", "cpu", "--out", str(ruled)]) == 0
    record = json.loads((ruled / "generation.json").read_text())
    assert record["rules"] is True
    for grid in model.generate(3, steps=4, rules=True, sign=False).numpy():
        assert sokoban.check(grid) is None  # well formed, whatever the tiny model drew
    partial = tmp_path / "partial.xsb"
    partial.write_text("#####\n#@$.#\n#???#\n#####\n")
    assert main(["complete", str(run / "model"), str(partial), "-n", "2", "--steps", "3",
                 "--device", "cpu", "--out", str(tmp_path / "done")]) == 0
    for path in sorted((tmp_path / "done").glob("*.xsb")):
        assert "#@$.#" in path.read_text()  # the given row, exactly
    capsys.readouterr()
    assert main(["generate", str(run / "model"), "--guidance", "2", "--device", "cpu"]) == 2
    assert "--guidance does not apply to a discrete model" in capsys.readouterr().err


def test_music_through_the_cli_harmonises_a_melody_exactly(tmp_path):
    folder = tmp_path / "chorales"
    folder.mkdir()
    paths = {p.name.split(".")[0]: p for p in corpus.bach_chorale_paths()}
    for name in ("bwv253", "bwv267"):
        shutil.copy(paths[name], folder)
    run = tmp_path / "run"
    assert main(["train", str(folder), "--run", str(run), "--steps", "2", "--bars", "2",
                 "--transpose", "1", "--split", "all", *TINY]) == 0
    model = genforge.load(run / "model", device="cpu")
    assert model.generate(2, bars=3, steps=4, sign=False).shape == (2, 4, 48)
    # with no options given, four-part music samples with its own validated defaults, and the
    # record says so; an option given wins
    pieces = tmp_path / "pieces"
    assert main(["generate", str(run / "model"), "-n", "1", "--bars", "1", "--device", "cpu",
                 "--temperature", "0.9", "--out", str(pieces)]) == 0
    record = json.loads((pieces / "generation.json").read_text())
    assert (record["sampler"], record["steps"], record["temperature"]) == ("confidence", 32, 0.9)
    assert resolve_sampling(FAMILIES["discrete"], level_spec())["sampler"] == "ancestral"
    # levels reveal in 32 steps up to 256 squares (Sokoban's 10x10), in 100 above (Lode Runner)
    assert resolve_sampling(FAMILIES["discrete"], level_spec((16, 16)))["steps"] == 32
    assert resolve_sampling(FAMILIES["discrete"], level_spec((20, 28)))["steps"] == 100
    melody = "tests/fixtures/music/melody.mid"
    out = tmp_path / "settings"
    assert main(["harmonize", str(run / "model"), melody, "-n", "2", "--steps", "3",
                 "--device", "cpu", "--out", str(out)]) == 0
    given, _ = read_given(melody)
    written, _ = read_given(out / "000000.mid", voices=(0, 1, 2, 3), steps=given.shape[1])
    assert (written[0] == given[0]).all()


def test_symmetry_augmentation_moves_levels_within_their_game():
    sok = LEVEL.bind(formats.SOKOBAN.to_dict())
    room = formats.parse_grid("#####\n#@$.#\n#   #\n#   #\n#####", formats.SOKOBAN)
    moved = sok.augment_tokens(torch.from_numpy(room)[None].repeat(64, 1, 1),
                               torch.Generator().manual_seed(0))
    variants = {tuple(m.flatten().tolist()) for m in moved}
    assert len(variants) == 8  # the eight symmetries of the square, all drawn
    for m in moved:  # a turned or mirrored puzzle is still the same puzzle
        assert sokoban.solve(m.numpy().astype(np.uint8)).status == "solvable"
    lode = LEVEL.bind(formats.LODE_RUNNER.to_dict())
    grid = torch.arange(12).reshape(1, 3, 4).repeat(32, 1, 1)
    seen = {tuple(m.flatten().tolist()) for m in lode.augment_tokens(grid, torch.Generator())}
    assert seen == {tuple(grid[0].flatten().tolist()), tuple(grid[0].flip(-1).flatten().tolist())}


def test_symmetry_is_refused_for_music():
    spec = ModelSpec("music", (4, 32), (), rep.model_shape((4, 32)))
    config = make_config(None, {"augment": {"augment": "symmetry"}}, family="discrete")
    with pytest.raises(ConfigError, match="--augment symmetry applies to levels"):
        FAMILIES["discrete"].phases(config, spec)


def test_every_sampled_level_has_exactly_one_player_even_from_an_untrained_model():
    torch.manual_seed(0)
    spec, legend = level_spec((6, 6)), formats.SOKOBAN
    modality = LEVEL.bind(legend.to_dict())
    players = torch.tensor(modality.unique_tokens())
    assert sorted(legend.chars[i] for i in players) == ["+", "@"]
    module = MaskedDenoiser(spec, tiny_config(16)).eval()
    family = FAMILIES["discrete"]
    for sampler, steps in (("ancestral", 36), ("confidence", 4)):
        out = modality.from_model(family.sample(module, list(range(16)), None, sampler=sampler,
                                                steps=steps, item_shape=spec.model_shape,
                                                spec=spec))
        assert (torch.isin(out.long(), players).flatten(1).sum(1) == 1).all()
    # a given player is the one player
    given = torch.zeros(4, 6, 6, dtype=torch.uint8)
    given[:, 2, 3] = legend.index("@")
    mask = torch.zeros(4, 6, 6, dtype=torch.bool)
    mask[:, 2, 3] = True
    out = modality.from_model(family.sample(module, list(range(4)), None, given=given,
                                            given_mask=mask, item_shape=spec.model_shape, spec=spec))
    assert (out[:, 2, 3] == legend.index("@")).all()
    assert (torch.isin(out.long(), players).flatten(1).sum(1) == 1).all()


def satb(*voices: list[int]) -> np.ndarray:
    """SATB codes from one list per voice: a pitch attacks, 0 holds the note before, -1 rests."""
    codes = np.zeros((4, len(voices[0])), dtype=np.uint8)
    for v, line in enumerate(voices):
        for t, p in enumerate(line):
            codes[v, t] = (rep.pitch_code(p, True) if p > 0 else
                           codes[v, t - 1] % rep.ONSET if p == 0 else 0)
    return codes


def test_repitch_move_offers_only_pitches_that_end_the_parallel():
    from genforge.metrics.music import parallel_fifths, parallel_octaves
    from genforge.music.voice_leading import attack_token, repitch_move
    # soprano C5-D5 over bass F3-G3: parallel fifths (twelfths) on the second beat; alto and
    # tenor hold, so the bass is re-pitched first (inner voices hold; the melody moves last)
    piece = satb([72, 0, 0, 0, 74, 0, 0, 0], [65, 0, 0, 0, 0, 0, 0, 0],
                 [60, 0, 0, 0, 0, 0, 0, 0], [53, 0, 0, 0, 55, 0, 0, 0])
    assert parallel_fifths(piece) == 1 and parallel_octaves(piece) == 0
    tokens = MUSIC.to_tokens(torch.from_numpy(piece)[None])[0].numpy()
    move = repitch_move(tokens, np.zeros_like(tokens, dtype=bool))
    assert move.span[3].tolist() == [False] * 4 + [True] * 4 and move.span[:3].sum() == 0
    offered = {e.token for e in move.edits}
    assert attack_token(55) not in offered  # the note as it was
    assert attack_token(67) not in offered  # a fifth under D5, reached by rising: parallel again
    assert {attack_token(43), attack_token(53)} <= offered  # contrary motion; a repeated note
    for edit in move.edits:
        fixed = tokens.copy()
        fixed[move.span] = edit.span_tokens
        assert parallel_fifths(MUSIC.from_tokens(torch.from_numpy(fixed)[None])[0].numpy()) == 0
    # a given bass is never changed: the soprano moves instead (alto and tenor do not take part)
    given = np.zeros_like(tokens, dtype=bool)
    given[3] = True
    assert repitch_move(tokens, given).span[0, 4:].all()
    given[0] = True
    assert repitch_move(tokens, given) is None


def test_rules_remove_parallels_keep_given_voices_and_stay_per_seed():
    from genforge.metrics.music import parallel_fifths, parallel_octaves
    torch.manual_seed(0)
    spec = ModelSpec("music", (4, 32), (), rep.model_shape((4, 32)))
    module = MaskedDenoiser(spec, tiny_config(16)).eval()  # untrained: parallels everywhere
    family = FAMILIES["discrete"]

    def draw(seeds, rules, **given):
        return MUSIC.from_model(family.sample(module, seeds, None, steps=8, rules=rules,
                                              item_shape=spec.model_shape, spec=spec, **given))

    def count(items):
        return sum(parallel_fifths(x) + parallel_octaves(x) for x in items.numpy())
    plain, ruled = draw(list(range(4)), False), draw(list(range(4)), True)
    assert count(plain) >= 6 and count(ruled) == 0
    assert (draw([3], True) == ruled[3:4]).all()  # sample i depends only on seed i
    soprano = torch.zeros(2, 4, 32, dtype=torch.bool)
    soprano[:, 0] = True
    with_melody = draw([0, 1], True, given=plain[:2], given_mask=soprano)
    assert (with_melody[:, 0] == plain[:2, 0]).all()
    vocab = {"game": "maze", "tiles": {"#": ["solid"], ".": ["empty"], "@": ["player"]},
             "order": "#.@", "filler": "#"}
    maze = ModelSpec("level", (4, 4), (), LEVEL.bind(vocab).model_shape((4, 4)), vocab)
    with pytest.raises(ConfigError, match="--rules: these level items have no rules"):
        family.sample(MaskedDenoiser(maze, tiny_config(16)), [0], None, rules=True,
                      item_shape=maze.model_shape, spec=maze)


def test_sokoban_moves_mend_border_boxes_and_goals_in_that_order():
    from genforge.levels.rules import sokoban_move
    sok, legend = LEVEL.bind(formats.SOKOBAN.to_dict()), formats.SOKOBAN

    def grid(text):
        return formats.parse_grid(text, legend).astype(np.int64)

    def apply(g, edit, move):
        g = g.copy()
        g[move.span] = edit.span_tokens
        return g
    free = np.zeros((5, 6), dtype=bool)
    # an open border: every edit walls one border square, nothing else changes
    g = grid("######\n#@$. #\n#    #\n#     \n######")
    move = sokoban_move(g, free)
    assert move.span.sum() == 1 and move.span[3, 5]
    assert [(e.row, e.col, legend.chars[e.token]) for e in move.edits] == [(3, 5, "#")]
    # a player in the border moves inside, to a floor or goal square, and walls the gap
    g = grid("######\n@ $. #\n#    #\n#    #\n######")
    move = sokoban_move(g, free)
    after = apply(g, move.edits[0], move)
    assert after[1, 0] == legend.index("#") and (after == legend.index("@")).sum() == 1
    assert {legend.chars[e.token] for e in move.edits} == {"@", "+"}
    # two boxes, one goal: put one on a goal or add a goal (no box goes); each edit balances
    g = grid("######\n#@$$.#\n#    #\n#    #\n######")
    move = sokoban_move(g, free)
    for edit in move.edits:
        after = apply(g, edit, move)
        assert sokoban.check(after.astype(np.uint8)) is None
        assert np.isin(after, [legend.index("$"), legend.index("*")]).sum() == 2
    assert {legend.chars[e.token] for e in move.edits} == {"*", "."}
    # one box, two goals: a box is added where it can reach a goal (the second row's squares, from
    # which a push up reaches the top row; the bottom row is dead), and no goal goes ...
    g = grid("######\n#@$..#\n#    #\n#    #\n######")
    move = sokoban_move(g, free)
    assert {(e.row, e.col, legend.chars[e.token]) for e in move.edits} == {
        (2, 2, "$"), (2, 3, "$"), (2, 4, "$")}
    for edit in move.edits:
        after = apply(g, edit, move).astype(np.uint8)
        assert sokoban.check(after) is None and (after == legend.index("$")).sum() == 2
        b = sokoban.board(after)
        assert all(d < float("inf") for d in (sokoban.push_distances(b)[p] for p in b.boxes))
    # ... and only with no square for one does a goal go or take a box
    g = grid("#####\n#@$.#\n##.##\n#####")
    move = sokoban_move(g, np.zeros(g.shape, dtype=bool))
    assert {(e.row, e.col, legend.chars[e.token]) for e in move.edits} == {
        (1, 3, " "), (1, 3, "*"), (2, 2, " "), (2, 2, "*")}
    # a box in a corner reaches no goal: it moves to a square from which one can be reached
    g = grid("######\n#$ @ #\n#  $ #\n#  ..#\n######")
    move = sokoban_move(g, free)
    assert move.span[1, 1] and {legend.chars[e.token] for e in move.edits} == {"$"}
    for edit in move.edits:
        after = apply(g, edit, move).astype(np.uint8)
        assert after[1, 1] == legend.index(" ") and sokoban.check(after) is None
        b = sokoban.board(after)
        assert all(d < float("inf") for d in (sokoban.push_distances(b)[p] for p in b.boxes))
    # given squares never move: the corner box is the user's, so nothing is offered there
    fixed = free.copy()
    fixed[1, 1] = True
    assert sokoban_move(g, fixed) is None
    # an empty room gets a box to push (then, next round, a goal)
    g = grid("######\n#@   #\n#    #\n#    #\n######")
    assert {legend.chars[e.token] for e in sokoban_move(g, free).edits} == {"$"}
    assert sokoban_move(grid("######\n#@$ .#\n#    #\n#    #\n######"), free) is None
    assert sok.rule_move_for((5, 6)) is sokoban_move


def test_sokoban_moves_undo_deadlocks_the_solver_would_find():
    from genforge.levels.rules import sokoban_move
    legend = formats.SOKOBAN

    def move_of(text):
        g = formats.parse_grid(text, legend).astype(np.int64)
        return g, sokoban_move(g, np.zeros(g.shape, dtype=bool))

    def tiles(move):
        return {(e.row, e.col, legend.chars[e.token]) for e in move.edits}

    def after(g, move):
        for edit in move.edits:
            out = g.copy()
            out[move.span] = edit.span_tokens
            yield out.astype(np.uint8)

    def boxes(level):
        return int(np.isin(level, (legend.index("$"), legend.index("*"))).sum())
    # two boxes side by side against the top wall can never move: one moves (none is deleted)
    # to a square where it can move and reach a goal
    g, move = move_of("#######\n# $$ .#\n#    .#\n#  @  #\n#     #\n#######")
    assert {legend.chars[e.token] for e in move.edits} == {"$"} and len(move.edits) > 4
    for level in after(g, move):
        assert boxes(level) == 2 and (level[1, 2] == legend.index(" ")) != (level[1, 3] == legend.index(" "))
        b = sokoban.board(level)
        dead = [d == float("inf") for d in sokoban.push_distances(b)]
        assert not any(sokoban.frozen(p, set(b.boxes), b, dead, set()) for p in b.boxes)
    # both boxes are stuck in the top row, so only the top goal is theirs: one box moves to where
    # every box has a goal of its own, keeping both boxes and goals
    g, move = move_of("#######\n#.$ $ #\n#     #\n#  .  #\n#@    #\n#######")
    assert {legend.chars[e.token] for e in move.edits} == {"$"}
    for level in after(g, move):
        assert boxes(level) == 2 and (level == legend.index(".")).sum() == 2
        b = sokoban.board(level)
        per_goal = sokoban.goal_costs(b)
        assert sokoban.min_matching([[row[p] for row in per_goal] for p in b.boxes]) < sokoban.NO_MATCH
    # a player walled in with nothing to push: a wall beside him opens
    _, move = move_of("######\n#@#  #\n###$.#\n#    #\n#    #\n######")
    assert tiles(move) == {(1, 2, " "), (2, 1, " ")}
    # no static deadlock, yet pushing the first box onto its goal walls in the second: the solver
    # proves it; no box move or wall opening mends it, so a box goes with its nearest goal
    g, move = move_of("########\n#@ $.$.#\n########")
    assert {(e.row, e.col) for e in move.edits} == {(1, 3), (1, 5)}
    assert all(sokoban.solve(level, 5_000).status == sokoban.SOLVABLE for level in after(g, move))
    # one box, pushed up it can never come back to the goal: a box move or a wall opening mends
    # it, and of those the ones with the longest solution are offered
    g, move = move_of("######\n#.   #\n##$###\n# @  #\n######")
    lengths = [sokoban.solve(level, 5_000).moves for level in after(g, move)]
    assert min(lengths) > 0 and len(set(lengths)) == 1 and all(boxes(lv) == 1 for lv in after(g, move))
    for y, x, tile in ((1, 2, "$"), (1, 3, "$"), (2, 3, " "), (2, 4, " ")):  # every other mend
        other = g.copy()
        if tile == "$":
            other[2, 2] = legend.index(" ")
        other[y, x] = legend.index(tile)
        assert sokoban.solve(other.astype(np.uint8), 5_000).moves <= lengths[0]
    # a level the solver does needs nothing
    assert move_of("######\n#@$ .#\n#    #\n#    #\n#    #\n######")[1] is None


def test_rule_moves_score_every_symbol_an_edit_changes():
    """An edit that changes two symbols is judged by the model at both (its `also` position):
    two edits equally likely at their first square, one of them unlikely at its second."""
    from genforge.families.discrete import apply_rule_moves
    from genforge.sampling import SeededNoise
    from genforge.sampling.moves import Edit, TokenMove

    class Fixed(torch.nn.Module):  # logits [N, 3 symbols, 1, 3]: flat except symbol 2 at col 2
        classes, mask_token = 3, 3

        def forward(self, tokens, rate, labels):
            logits = torch.zeros(tokens.shape[0], 3, 1, 3)
            logits[:, 2, 0, 2] = 30.0
            return logits

    def move_of(tokens, fixed):
        if tokens[0, 2] != 0:
            return None
        span = np.ones((1, 3), dtype=bool)
        return TokenMove(span, [Edit(0, 0, 1, np.array([1, 0, 1]), ((0, 2, 1),)),
                                Edit(0, 1, 1, np.array([0, 1, 2]), ((0, 2, 2),))])
    start = torch.zeros(8, 1, 3, dtype=torch.long)
    mended = apply_rule_moves(Fixed(), start, move_of, SeededNoise(range(8)))
    assert mended.tolist() == [[[0, 1, 2]]] * 8


def test_lode_runner_moves_bring_gold_within_reach():
    from genforge.levels.rules import lode_runner_move
    legend = formats.LODE_RUNNER
    lr_level = LEVEL.bind(legend.to_dict())
    assert lr_level.rule_move_for((20, 28)) is lode_runner_move

    def grid(text):
        return formats.parse_grid(text, legend).astype(np.int64)
    free = np.zeros((4, 5), dtype=bool)
    # gold sealed in solid rock beside a reachable one: the sealed one moves onto the top floor,
    # and its old square becomes what the model judges (scored with the edit): empty or a wall,
    # ladder or bar, none of which the runner can reach, so every edit leaves all gold in reach
    g = grid("M.G..\nBBBBB\nBGB..\nBBBBB")
    move = lode_runner_move(g, free)
    assert {(e.row, e.col, legend.chars[e.token]) for e in move.edits} == {(0, 1, "G"), (0, 3, "G"),
                                                                           (0, 4, "G")}
    assert {(e.also[0][:2], legend.chars[e.also[0][2]]) for e in move.edits} == {
        ((2, 1), c) for c in ".bB#-"}
    for edit in move.edits:
        after = g.copy()
        after[move.span] = edit.span_tokens
        assert after[2, 1] == edit.also[0][2] and (after == legend.index("G")).sum() == 2
        assert lode_runner_move(after, free) is None
    # with no empty square in reach, a brick beside the runner's reach opens first ...
    shut = grid("MGGGG\nBBBBB\nBGB..\nBBBBB")
    move = lode_runner_move(shut, free)
    assert {(e.row, e.col) for e in move.edits} == {(1, c) for c in range(5)}
    assert {legend.chars[e.token] for e in move.edits} == {".", "#", "-"}
    # ... and where none may open (the user's), the gold becomes another tile instead
    given_floor = free.copy()
    given_floor[1] = True
    move = lode_runner_move(shut, given_floor)
    assert {(e.row, e.col) for e in move.edits} == {(2, 1)}
    assert "G" not in {legend.chars[e.token] for e in move.edits}
    # no reachable gold at all: the model places one on a square the runner reaches
    move = lode_runner_move(grid("M....\nBBBBB\nBGB..\nBBBBB"), free)
    assert {legend.chars[e.token] for e in move.edits} == {"G"}
    assert {(e.row, e.col) for e in move.edits} == {(0, 1), (0, 2), (0, 3), (0, 4)}
    # everything reachable: nothing to do; the user's own gold is never touched
    assert lode_runner_move(grid("M.G..\nBBBBB\n.....\nBBBBB"), free) is None
    fixed = free.copy()
    fixed[2, 1] = True
    assert lode_runner_move(grid("M.G..\nBBBBB\nBGB..\nBBBBB"), fixed) is None


def test_lode_runner_rules_bring_all_gold_within_reach_even_from_an_untrained_model():
    from genforge.levels import lode_runner as lr
    plain, ruled = untrained_levels(level_spec((6, 8), formats.LODE_RUNNER), 6, steps=8)
    assert sum(lr.playable(g) for g in plain) <= 3
    assert all(lr.playable(g) for g in ruled)


def test_sokoban_rules_make_every_level_well_formed_even_from_an_untrained_model():
    plain, ruled = untrained_levels(level_spec((7, 7)), 8, steps=12)
    assert sum(sokoban.check(g) is None for g in plain) <= 2
    assert all(sokoban.check(g) is None for g in ruled)
