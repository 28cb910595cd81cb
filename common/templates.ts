// `{date}` and `{datetime}` in scheduled input/output templates, resolved from the scheduled time
// (not the wall clock), so a backfill of last Tuesday reads last Tuesday's file. Pure: the job
// workflow calls it with TemporalScheduledStartTime.

export function hasTemplate(text: string): boolean {
  return /\{(date|datetime)\}/.test(text);
}

/** Calendar parts of `when` in an IANA time zone (UTC by default). */
function parts(when: Date, timeZone: string): Record<string, string> {
  const fmt = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  });
  return Object.fromEntries(fmt.formatToParts(when).map((p) => [p.type, p.value]));
}

/** `{date}` → `YYYY-MM-DD`, `{datetime}` → `YYYY-MM-DDTHH-MM-SS` (file-name safe). */
export function resolveTemplate(text: string, when: Date, timeZone = 'UTC'): string {
  const p = parts(when, timeZone);
  const date = `${p.year}-${p.month}-${p.day}`;
  const datetime = `${date}T${p.hour}-${p.minute}-${p.second}`;
  return text.replace(/\{date\}/g, date).replace(/\{datetime\}/g, datetime);
}
