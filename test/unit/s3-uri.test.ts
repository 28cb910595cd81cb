import { describe, expect, it } from 'vitest';
import { isS3Uri, parseS3Uri, s3Uri } from '../../storage/s3.ts';

describe('s3:// locations', () => {
  it('splits a location into bucket and key, and back', () => {
    expect(parseS3Uri('s3://data-lake/jobs/nightly/in.jsonl')).toEqual({
      bucket: 'data-lake',
      key: 'jobs/nightly/in.jsonl',
    });
    expect(parseS3Uri('s3://data-lake')).toEqual({ bucket: 'data-lake', key: '' });
    expect(s3Uri({ bucket: 'b12', key: 'a/b' })).toBe('s3://b12/a/b');
    expect(isS3Uri('s3://x/y')).toBe(true);
    expect(isS3Uri('./s3/x')).toBe(false);
  });

  it('refuses what is not an S3 location, saying how to write one', () => {
    for (const bad of ['s3:/bucket/key', 's3://Bucket/key', 's3://ab/key', 'https://bucket/key', 's3:///key'])
      expect(() => parseS3Uri(bad), bad).toThrow(/write s3:\/\/<bucket>\/<key>/);
  });
});
