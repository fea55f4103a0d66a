// Cross-check of dsocr's tokenizer against an independent implementation,
// @lenml/tokenizers (transformers.js), on >= 10,000 generated strings.
//
//   node tests/node/crosscheck.mjs --bin BUILD/tests/test_text_jsonl --model GOLDEN/tiny-model
//       [--n STRINGS_PER_KIND] [--dump corpus.jsonl]
//
// The corpus is deterministic (seeded PRNG). For every string the ids from
// dsocr (encode(text, add_special_tokens=False)) must equal the JS ids, and
// dsocr's decode(encode(s)) and streaming decode must give s back. Exits 1 on
// any difference and prints the first mismatches.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

function fail(msg) {
  console.error(`crosscheck: ${msg}`);
  process.exit(1);
}

let TokenizerLoader;
try {
  ({ TokenizerLoader } = await import("@lenml/tokenizers"));
} catch (e) {
  fail(`cannot load @lenml/tokenizers (${e.code || e.message}): node_modules is missing, run \`npm ci --prefix tests/node\``);
}

// ---- arguments ---------------------------------------------------------------
const args = process.argv.slice(2);
function opt(name, dflt) {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
}
const bin = opt("--bin");
const modelDir = opt("--model");
const perKind = Number(opt("--n", "700"));
const dump = opt("--dump");
if (!bin || !modelDir) fail("usage: crosscheck.mjs --bin TEST_TEXT_JSONL --model MODEL_DIR [--n N] [--dump FILE]");
if (!fs.existsSync(bin)) fail(`${bin} does not exist (build the test_text_jsonl target)`);

// ---- deterministic PRNG (mulberry32) -------------------------------------------
let seed = 0x5eed1234;
function rand() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const ri = (n) => Math.floor(rand() * n);
const pick = (a) => a[ri(a.length)];
const cp = (lo, hi) => String.fromCodePoint(lo + ri(hi - lo + 1));
function rep(n, f) {
  let s = "";
  for (let i = 0; i < n; i++) s += f(i);
  return s;
}

// Two characters are kept out of whitespace contexts on purpose: U+0085 and
// U+FEFF. HF tokenizers runs the pre-tokenizer regex with Oniguruma, where \s
// is Unicode White_Space (has U+0085, lacks U+FEFF); JavaScript's \s is the
// other way round, so @lenml/tokenizers splits differently there. dsocr
// follows HF; tests/test_text.c pins those cases.
// ---- fragments of each kind --------------------------------------------------------
const WORDS = ("the of and to in a is that for it as was with be by on not he this are or his from at which but have an " +
  "had they you were document recognition optical character model table figure results performance compression vision " +
  "tokens encoder decoder language accuracy benchmark layout paragraph section approximately significantly DeepSeek " +
  "OCR GPT-4 iPhone e-mail U.S.A. Mr. Dr. don't won't it's they're we've I'd you'll can't ain't o'clock rock'n'roll " +
  "naïve café résumé Zürich façade Ångström coöperate").split(" ");
const PUNCT = [".", ",", ";", ":", "!", "?", "...", "—", "–", "-", "(", ")", "[", "]", "\"", "'", "«", "»", "“", "”", "‘", "’", "…", "/", "&", "%", "#", "@", "*"];
const WS = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r", " \n", "\n ", "\t\t", " \t ", "\u00a0", "\u3000", "\u2003", "\u2009", "\u202f", "\u2028", "\u2029", "\v", "\f", "\u180e", "\u200b"];

function english() {
  let s = "";
  const n = 1 + ri(25);
  for (let i = 0; i < n; i++) {
    let w = pick(WORDS);
    if (rand() < 0.15) w = w[0].toUpperCase() + w.slice(1);
    if (rand() < 0.05) w = w.toUpperCase();
    s += (i && rand() < 0.93 ? " " : "") + w;
    if (rand() < 0.15) s += pick(PUNCT);
  }
  return s + (rand() < 0.5 ? "." : "");
}

const HAN_PUNCT = ["，", "。", "、", "！", "？", "：", "；", "《", "》", "「", "」", "（", "）", "…", "—"];
function chinese() {
  return rep(1 + ri(30), () => {
    const r = rand();
    if (r < 0.7) return cp(0x4e00, 0x9fa5);
    if (r < 0.75) return cp(0x9fa6, 0x9fef);          // Han outside regex 2's range
    if (r < 0.78) return cp(0x3400, 0x4dbf);          // Extension A
    if (r < 0.8) return cp(0x20000, 0x2a6df);         // Extension B
    if (r < 0.9) return pick(HAN_PUNCT);
    if (r < 0.95) return String(ri(10000));
    return pick([" ", "\n", "a", "OCR", "DeepSeek"]);
  });
}

function japanese() {
  return rep(1 + ri(30), () => {
    const r = rand();
    if (r < 0.35) return cp(0x3041, 0x3096);          // hiragana
    if (r < 0.6) return cp(0x30a1, 0x30fa);           // katakana
    if (r < 0.65) return "ー";
    if (r < 0.7) return cp(0xff66, 0xff9d);           // half-width katakana
    if (r < 0.85) return cp(0x4e00, 0x9fa5);
    if (r < 0.92) return pick(["。", "、", "「", "」", "・", "〜", "？", "！"]);
    return pick([" ", "\n", "0", "12", "Ｔｏｋｙｏ", "１２３"]);
  });
}

function korean() {
  return rep(1 + ri(25), () => {
    const r = rand();
    if (r < 0.75) return cp(0xac00, 0xd7a3);
    if (r < 0.8) return cp(0x1100, 0x1112) + cp(0x1161, 0x1175);   // conjoining jamo
    if (r < 0.83) return cp(0x3131, 0x318e);                       // compatibility jamo
    if (r < 0.93) return " ";
    return pick([".", ",", "?", "!", "1", "2024년"]);
  });
}

function arabic() {
  return rep(1 + ri(25), () => {
    const r = rand();
    if (r < 0.65) return cp(0x0621, 0x064a);
    if (r < 0.75) return cp(0x064b, 0x0652);          // harakat (combining)
    if (r < 0.8) return cp(0x0660, 0x0669);           // Arabic-Indic digits
    if (r < 0.92) return " ";
    return pick(["،", "؛", "؟", ".", "\u200f", "\u200e", "ـ", "ﷺ", "ﻻ"]);
  });
}

const EMOJI_ZWJ = ["👨‍👩‍👧‍👦", "👩‍💻", "🏳️‍🌈", "🧑🏽‍🚀", "❤️‍🔥", "👁️‍🗨️", "🐻‍❄️", "🇯🇵", "🇺🇸", "🇪🇺", "1️⃣", "#️⃣", "👍🏻", "👍🏿", "✌️", "☺️", "©️", "™️"];
function emoji() {
  return rep(1 + ri(15), () => {
    const r = rand();
    if (r < 0.3) return cp(0x1f600, 0x1f64f);
    if (r < 0.45) return cp(0x1f300, 0x1f5ff);
    if (r < 0.55) return cp(0x1f900, 0x1f9ff);
    if (r < 0.7) return pick(EMOJI_ZWJ);
    if (r < 0.75) return cp(0x2600, 0x26ff);
    if (r < 0.8) return "\u200d";
    if (r < 0.85) return "\ufe0f";
    return pick([" ", "a", "ok", "!", "\n", "中"]);
  });
}

function combining() {
  return rep(1 + ri(20), () => {
    const r = rand();
    if (r < 0.35) return cp(0x61, 0x7a) + rep(1 + ri(3), () => cp(0x300, 0x36f));
    if (r < 0.5) return cp(0x915, 0x939) + pick(["", "\u093f", "\u0940", "\u094d", "\u0902", "\u093e", "\u0947"]);
    if (r < 0.6) return cp(0xe01, 0xe2e) + pick(["", "\u0e31", "\u0e34", "\u0e48", "\u0e49", "\u0e47"]);
    if (r < 0.7) return " " + cp(0x300, 0x36f);       // combining mark after a space
    if (r < 0.8) return cp(0x5d0, 0x5ea) + pick(["", "\u05b0", "\u05b4", "\u05bc"]); // Hebrew + points
    if (r < 0.9) return cp(0x3b1, 0x3c9) + pick(["", "\u0301", "\u0308"]);
    return pick([" ", "\u200b", "\u200c", "\u00ad", "\u2060", "\u034f"]);
  });
}

const CODE = [
  "int main(int argc, char **argv) {\n    return 0;\n}\n",
  "def f(x):\n\treturn x**2 + 1  # square\n",
  "for (let i = 0; i < n; i++) { a[i] += b[i] * 2; }",
  "if (x != y && y >= 3 || !z) x <<= 1;",
  "const s = `template ${value}`;\nconsole.log(s);",
  "SELECT id, name FROM users WHERE age > 30 ORDER BY name;",
  "#include <stdio.h>\n#define MAX(a, b) ((a) > (b) ? (a) : (b))",
  "std::vector<std::string> v{\"a\", \"b\"};",
  "x = {'k': [1, 2.5, -3e10], \"s\": None}",
  "fn main() -> Result<(), Box<dyn Error>> { Ok(()) }",
  "    pass\n        break\n",
  "$ ls -la | grep '\\.c$' > out.txt 2>&1",
  "<div class=\"x\"><span>t</span></div>",
  "a_b__c___d ____init____ __name__",
  "0x7fffffff 0b1010 1_000_000 3.14159e-10",
  "//comment\n/* block */\n#!/usr/bin/env python3\n",
];
function code() {
  return rep(1 + ri(3), () => pick(CODE)) + (rand() < 0.3 ? rep(ri(5), () => pick(["\t", "    ", "\n", "}", ";"])) : "");
}

const LATEX = ["\\frac{a}{b}", "$x^2 + y^2 = z^2$", "\\begin{equation}", "\\end{equation}", "\\alpha\\beta\\gamma", "\\sum_{i=1}^{n} i",
  "\\int_0^\\infty e^{-x^2} dx", "\\mathbf{W}_{q}", "\\left( \\frac{1}{2} \\right)", "\\\\", "&", "\\hline", "$$", "\\(", "\\)",
  "\\mathrm{d}", "_{\\text{max}}", "\\sqrt[3]{x}", "\\{1, 2\\}", "\\textbf{Bold}", "%comment", "\\cite{ref2024}", "10^{-3}"];
function latex() {
  return rep(1 + ri(10), () => pick(LATEX) + (rand() < 0.5 ? " " : ""));
}

function table() {
  const cols = 1 + ri(5), rows = 1 + ri(4);
  if (rand() < 0.5) {
    const cell = () => pick(["a", "Name", " 12.5 ", "中文", "", "x|y", "**b**", "—", String(ri(1000))]);
    let s = "| " + rep(cols, () => cell() + " | ") + "\n|" + rep(cols, () => pick(["---", ":--", "--:", ":-:"]) + "|") + "\n";
    s += rep(rows, () => "| " + rep(cols, () => cell() + " | ") + "\n");
    return s;
  }
  const cell = () => pick(["1", "Total", "3.5%", "表", "", " x ", "<b>y</b>"]);
  return "<table>" + rep(rows, () => "<tr>" + rep(cols, () => "<td>" + cell() + "</td>") + "</tr>") + "</table>";
}

function digits() {
  return rep(1 + ri(6), () => {
    const r = rand();
    if (r < 0.4) return rep(1 + ri(40), () => String(ri(10)));
    if (r < 0.5) return String(ri(1e6)) + pick([".", ",", " ", "-", "/", ":"]) + String(ri(1e4));
    if (r < 0.6) return rep(1 + ri(8), () => cp(0x660, 0x669));   // Arabic-Indic
    if (r < 0.65) return rep(1 + ri(8), () => cp(0x966, 0x96f));  // Devanagari
    if (r < 0.72) return rep(1 + ri(8), () => cp(0xff10, 0xff19)); // full-width
    if (r < 0.8) return pick(["²", "³", "½", "¼", "Ⅻ", "ⅷ", "①", "⑳", "㈠", "〇", "一二三"]);
    return pick([" ", "$", "€", "%", "+", "e", "x", "\n"]) + String(ri(100));
  });
}

function whitespace() {
  return rep(1 + ri(8), () => (rand() < 0.6 ? pick(WS) : rep(1 + ri(6), () => pick(WS)))
    + (rand() < 0.5 ? pick(["a", "word", "中", ".", "1", "é", "\u0301", "🙂", "<td>"]) : ""));
}

// Valid UTF-8 that looks odd: replacement char, BOM, noncharacters, private use,
// C1 controls, the ends of the planes, mojibake, lone combining marks.
function oddValid() {
  return rep(1 + ri(10), () => {
    const r = rand();
    if (r < 0.1) return "\ufffd";
    if (r < 0.15) return pick(["\ufffe", "\uffff", "\u{10ffff}", "\u{fffff}", "\u{1fffe}", "\ufdd0"]);
    if (r < 0.25) return cp(0xe000, 0xf8ff);            // private use
    if (r < 0.32) return cp(0x80, 0x84) + cp(0x86, 0x9f); // C1 controls (not U+0085)
    if (r < 0.4) return cp(0x01, 0x08) + cp(0x0e, 0x1f);  // C0 controls
    if (r < 0.5) return pick(["Ã©", "Ã¨", "â€™", "â€œ", "Ã¤Ã¶Ã¼", "ï»¿", "Â "]);
    if (r < 0.55) return "\ud7ff\ue000";
    if (r < 0.6) return cp(0x1d400, 0x1d7ff);           // math alphanumerics
    if (r < 0.65) return cp(0x10000, 0x100ff);          // Linear B
    if (r < 0.7) return "\u007f";
    if (r < 0.78) return pick(["\u00c0\u00af", "\u00e0\u0080\u00af", "\u00f0\u009f\u0098\u0080"]);
    return pick([" ", "a", "\n", "Ω", "ß", "ﬁ", "Ǆ", "İ", "ŉ"]);
  });
}

// Special and added tokens in context, and near misses.
let addedTokens = [];
function specials() {
  return rep(1 + ri(6), () => {
    const r = rand();
    if (r < 0.45) return pick(addedTokens);
    if (r < 0.6) return pick(["<image>", "<|ref|>", "<|/ref|>", "<|det|>", "<|/det|>", "<|grounding|>", "<td>", "</td>", "<tr>", "</tr>", "<|User|>", "<|Assistant|>"]);
    if (r < 0.75) return pick(["<IMAGE>", "<|ref|", "|ref|>", "<image", "image>", "<<image>>", "<|det|>>", "<｜begin▁of▁sentence", "<|User|", "<td >", "</td", "<|/ref|>]]", "<t", "<|"]);
    if (r < 0.9) return english().slice(0, 20);
    return pick(["\n", " ", "[[100, 200, 300, 400]]", "中文", "1", "\t"]);
  });
}

const KINDS = { english, chinese, japanese, korean, arabic, emoji, combining, code, latex, table, digits, whitespace, oddValid, specials };
function mixed() {
  const names = Object.keys(KINDS);
  return rep(2 + ri(4), () => KINDS[pick(names)]());
}

// ---- the corpus ----------------------------------------------------------------------------
const tokJSON = JSON.parse(fs.readFileSync(path.join(modelDir, "tokenizer.json"), "utf8"));
const tokConfig = JSON.parse(fs.readFileSync(path.join(modelDir, "tokenizer_config.json"), "utf8"));
addedTokens = tokJSON.added_tokens.map((t) => t.content);

const corpus = [];
for (const [name, gen] of Object.entries({ ...KINDS, mixed })) {
  for (let i = 0; i < perKind; i++) corpus.push({ kind: name, text: gen() });
}
// every added token alone and inside text
for (const t of addedTokens) {
  corpus.push({ kind: "added", text: t });
  corpus.push({ kind: "added", text: english().slice(0, 12) + t + pick(["", " ", "\n", "x", "中"]) + english().slice(0, 8) });
}
// long strings
for (let i = 0; i < 20; i++) corpus.push({ kind: "long", text: rep(200, () => pick([english, chinese, code, whitespace, digits])()) });
corpus.push({ kind: "long", text: " ".repeat(5000) + "x" + "\n".repeat(3000) });
corpus.push({ kind: "long", text: "a".repeat(20000) });
corpus.push({ kind: "long", text: "9".repeat(10001) });
corpus.push({ kind: "long", text: "中".repeat(8000) });
// NUL cannot travel through the C helper's JSON parser; strip it
for (const c of corpus) c.text = c.text.replace(/\0/g, "");

if (dump) fs.writeFileSync(dump, corpus.map((c) => JSON.stringify(c)).join("\n") + "\n");

// ---- encode with both ---------------------------------------------------------------------
const t0 = Date.now();
const tokenizer = TokenizerLoader.fromPreTrained({ tokenizerJSON: tokJSON, tokenizerConfig: tokConfig });
const jsIds = corpus.map((c) => tokenizer.encode(c.text, { add_special_tokens: false }));
const t1 = Date.now();

const input = corpus.map((c) => JSON.stringify({ text: c.text })).join("\n") + "\n";
const run = spawnSync(bin, [modelDir], { input, maxBuffer: 1 << 30, encoding: "utf8" });
const t2 = Date.now();
if (run.status !== 0) fail(`${bin} exited with ${run.status}: ${run.stderr}`);
const lines = run.stdout.split("\n");

let mismatches = 0, roundtrip = 0, errors = 0, shown = 0;
const byKind = {};
for (let i = 0; i < corpus.length; i++) {
  const line = lines[i] ?? "ERR missing output";
  const [tag, ...rest] = line.split(" ");
  const kind = corpus[i].kind;
  byKind[kind] = byKind[kind] || { n: 0, bad: 0 };
  byKind[kind].n++;
  let problem = null;
  if (tag === "ERR") { errors++; problem = line; }
  else {
    const ids = rest.map(Number);
    const js = jsIds[i];
    if (ids.length !== js.length || ids.some((v, k) => v !== js[k])) { mismatches++; problem = `ids differ\n    dsocr: ${ids.join(" ")}\n    js:    ${js.join(" ")}`; }
    if (tag === "RT") { roundtrip++; problem = (problem ? problem + "\n  " : "") + "decode(encode(s)) != s (or streaming decode differs)"; }
  }
  if (problem) {
    byKind[kind].bad++;
    if (shown++ < 10) console.error(`mismatch #${shown} [${kind}] ${JSON.stringify(corpus[i].text).slice(0, 300)}\n  ${problem}`);
  }
}
const summary = Object.entries(byKind).map(([k, v]) => `${k} ${v.n - v.bad}/${v.n}`).join(", ");
console.log(`crosscheck: ${corpus.length} strings (${summary})`);
console.log(`crosscheck: js ${t1 - t0} ms, dsocr ${t2 - t1} ms; ${mismatches} id mismatches, ${roundtrip} round-trip failures, ${errors} errors`);
if (corpus.length < 10000) fail(`only ${corpus.length} strings (need >= 10000)`);
if (mismatches || roundtrip || errors) process.exit(1);
console.log("crosscheck: OK");
