// Masked (discrete) sampling of genforge levels in JavaScript, over one ONNX evaluation per step.
// The same algorithm as genforge.runtime.masked (ancestral or confidence reveal order, MaskGIT's
// cosine schedule, the player placed first where the model puts it), with JavaScript's own
// seeded random numbers: a seed here gives its own level, not the one Python draws for it.

// mulberry32: a small seeded generator, one per level, so level i depends only on seed i
function stream(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967297; // in (0, 1)
  };
}

const gumbel = (u) => -Math.log(-Math.log(u));

export function revealSchedule(positions, steps) {
  const out = [];
  for (let s = 0; s < steps; s++) {
    const c = Math.floor(positions * Math.cos((Math.PI / 2) * (s + 1) / steps));
    out.push(positions > s ? Math.min(c, positions - s - 1) : 0);
  }
  return out;
}

// Levels as arrays of tile indices [H][W]; `onnx` is config.json's "onnx" section.
export async function generateLevels(ort, session, onnx, seed, n, options = {}) {
  const [h, w] = onnx.grid, k = onnx.classes, mask = onnx.mask_token, size = h * w;
  const { sampler, temperature } = { ...onnx.sampling, ...options };
  const unique = onnx.unique_tokens;
  const rngs = Array.from({ length: n }, (_, i) => stream(seed + i));
  const tokens = Array.from({ length: n }, () => new Array(size).fill(mask));
  const steps = Math.max(1, Math.min(options.steps ?? onnx.sampling.steps, size));
  const schedule = revealSchedule(size, steps);
  for (let s = 0; s < steps; s++) {
    const flat = new BigInt64Array(n * size), rate = new Float32Array(n);
    tokens.forEach((t, i) => {
      t.forEach((v, j) => { flat[i * size + j] = BigInt(v); });
      rate[i] = t.filter((v) => v === mask).length / size;
    });
    const feeds = { tokens: new ort.Tensor("int64", flat, [n, h, w]),
                    rate: new ort.Tensor("float32", rate, [n]) };
    const logits = (await session.run(feeds))[session.outputNames[0]].data; // [n, k, h, w]
    for (let i = 0; i < n; i++) {
      const t = tokens[i], rng = rngs[i];
      const at = (c, j) => logits[(i * k + c) * size + j] / Math.max(temperature, 1e-4);
      const noise = Array.from({ length: k * size }, () => gumbel(rng()));
      const banned = new Set();
      if (unique.length) { // the player first, where the model expects one, then never again
        if (!t.some((v) => unique.includes(v))) {
          let best = -Infinity, square = -1, kind = unique[0];
          for (let j = 0; j < size; j++) {
            if (t[j] !== mask) continue;
            let p = 0, z = 0, m = -Infinity;
            for (let c = 0; c < k; c++) m = Math.max(m, at(c, j));
            for (let c = 0; c < k; c++) { const e = Math.exp(at(c, j) - m); z += e; if (unique.includes(c)) p += e; }
            const score = Math.log(p / z + 1e-12) + noise[j];
            if (score > best) { best = score; square = j; }
          }
          let top = -Infinity;
          unique.forEach((c, u) => { const v = at(c, square) + noise[(1 + u) * size + square]; if (v > top) { top = v; kind = c; } });
          t[square] = kind;
        }
        unique.forEach((c) => banned.add(c));
      }
      const drawn = new Array(size), score = new Array(size);
      for (let j = 0; j < size; j++) {
        let best = -Infinity, pick = 0, m = -Infinity, z = 0;
        for (let c = 0; c < k; c++) {
          if (banned.has(c)) continue;
          const v = at(c, j) + noise[c * size + j];
          if (v > best) { best = v; pick = c; }
          m = Math.max(m, at(c, j));
        }
        drawn[j] = pick;
        const u = rng();
        if (sampler === "confidence") {
          for (let c = 0; c < k; c++) if (!banned.has(c)) z += Math.exp(at(c, j) - m);
          const anneal = temperature * (1 - (s + 1) / steps);
          score[j] = at(pick, j) - m - Math.log(z) + anneal * gumbel(u);
        } else score[j] = Math.log(u);
      }
      const open = [...t.keys()].filter((j) => t[j] === mask).sort((a, b) => score[b] - score[a]);
      open.slice(0, Math.max(0, open.length - schedule[s])).forEach((j) => { t[j] = drawn[j]; });
    }
  }
  return tokens.map((t) => Array.from({ length: h }, (_, r) => t.slice(r * w, (r + 1) * w)));
}

// One level as text in the game's characters (an XSB board for Sokoban).
export const levelText = (grid, chars) => grid.map((row) => row.map((v) => chars[v]).join("")).join("\n") + "\n";
