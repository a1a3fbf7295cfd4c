// node check.mjs MODEL_FOLDER [SEED] [N]: the page's sampler in Node, printing levels as text
// (what tests/test_onnx_web_example.py runs; the browser page does the same with a canvas).
import { readFileSync } from "node:fs";
import * as ort from "./vendor/ort.wasm.min.mjs";
import { generateLevels, levelText } from "./sampler.mjs";

const [folder, seed = "0", n = "4"] = process.argv.slice(2);
const config = JSON.parse(readFileSync(`${folder}/config.json`, "utf8"));
ort.env.wasm.numThreads = 1;
const session = await ort.InferenceSession.create(readFileSync(`${folder}/${config.onnx.file}`));
const levels = await generateLevels(ort, session, config.onnx, Number(seed), Number(n));
console.log(JSON.stringify(levels.map((g) => levelText(g, config.onnx.decode.chars))));
