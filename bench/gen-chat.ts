// Deterministic generator of chat-request JSONL for the benchmarks: ~900 bytes a line, a mix of
// models and thinking modes, some escaped characters and some CJK text, like real datasets.
import fs from 'node:fs';
import path from 'node:path';

const WORDS =
  'the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were her she there one all we their been has more if will would who so no can said what when up out about into them then some than could only other time new these two may first any like now my such make over our even most me state after also made many before must through back years where much your way well down should because each just those people how too little good very without great world own see men work long get here between both life being under never day same another know while last might us great old year off come since against go came right used take three'.split(
    ' ',
  );
const CJK =
  '的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严';

/** A small seeded PRNG (mulberry32) so the same seed gives the same file. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MODELS = ['qwen-plus', 'qwen-plus', 'qwen-plus', 'qwen-flash', 'qwen3.6-plus'];

/** One request line (no newline) of roughly `size` bytes. */
export function chatLine(i: number, rand: () => number, size = 900): string {
  const model = MODELS[i % MODELS.length]!;
  let text = '';
  const cjk = rand() < 0.1;
  const target = cjk ? size / 3 - 70 : size - 200;
  while (text.length < target) {
    if (cjk) {
      const at = Math.floor(rand() * (CJK.length - 8));
      text += CJK.slice(at, at + 8);
    } else {
      text +=
        WORDS[Math.floor(rand() * WORDS.length)]! + (rand() < 0.02 ? '\n' : rand() < 0.01 ? ' "q" ' : ' ');
    }
  }
  const body: Record<string, unknown> = {
    model,
    messages: [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: text },
    ],
  };
  if (model.startsWith('qwen3.6')) body.enable_thinking = i % 2 === 0;
  return JSON.stringify({ custom_id: `req-${i}`, method: 'POST', url: '/v1/chat/completions', body });
}

/** Writes `lines` request lines of about `size` bytes to `file`, in big blocks. */
export function generateChatFile(file: string, lines: number, seed = 1, size = 900): number {
  const rand = rng(seed);
  const fd = fs.openSync(file, 'w');
  let bytes = 0;
  try {
    let block: string[] = [];
    for (let i = 0; i < lines; i++) {
      block.push(chatLine(i, rand, size));
      if (block.length === 4096 || i === lines - 1) {
        const buf = Buffer.from(block.join('\n') + '\n');
        fs.writeSync(fd, buf);
        bytes += buf.length;
        block = [];
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return bytes;
}

/**
 * The generated input at `file`: made once and reused by later runs. Written under a temporary name
 * and renamed, so a bench stopped while generating never leaves a short file to be reused.
 */
export function ensureChatFile(file: string, lines: number, size = 900): void {
  if (fs.existsSync(file)) return;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  process.stdout.write(
    `generating ${lines.toLocaleString('en-US')} chat lines of ~${size} bytes into ${file} ...\n`,
  );
  const tmp = `${file}.tmp`;
  generateChatFile(tmp, lines, 1, size);
  fs.renameSync(tmp, file);
}
