// A separate process writing answers into a store, for the two-writers test: node answers-writer.ts
// <root> <jobId> <from> <count>. Writes keys from..from+count, each answer naming its job.
import { LocalAnswerStore } from '../../storage/local-answers.ts';

const [root, jobId, from, count] = process.argv.slice(2);
const store = new LocalAnswerStore({ root: root! });
const w = store.writer(jobId!);
for (let i = Number(from); i < Number(from) + Number(count); i++) {
  const key = i.toString(16).padStart(32, '0');
  const result = Buffer.from(
    JSON.stringify({
      id: `r-${i}`,
      custom_id: `c-${i}`,
      response: { status_code: 200, body: { job: jobId, i } },
    }),
  );
  w.put(key, { model: 'm', usage: [1, 2, 3], customId: `c-${i}`, result });
}
w.close();
