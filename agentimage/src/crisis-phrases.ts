// The backstop that does not depend on the model: the student's final transcripts are checked against
// the reviewed list in crisis-phrases.json (its "about" and "review" say how it matches and who reviewed it).
import list from './crisis-phrases.json' with { type: 'json' };
import { SAFETY_KINDS, SAFETY_SEVERITIES, moreSevere, type SafetyKind, type SafetySeverity } from './safety-types.js';

export interface CrisisPhrase {
  text: string;
  kind: SafetyKind;
  severity: SafetySeverity;
  negatable: boolean;
  /** An occurrence followed by one of these words does not count (slang: "hits me up"). */
  unlessNext: string[];
}

export interface PhraseList {
  negationWindowWords: number;
  negations: string[];
  phrases: CrisisPhrase[];
}

/**
 * Lowercase words separated by single spaces: apostrophes are dropped ("don't" and "dont", "I'm" and "Im"
 * are the same word, however the transcriber wrote it), every other non-letter/digit run is a space.
 */
export function normalizeSpeech(text: string): string {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/['\u2018\u2019\u02bc`]/g, '')
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

/** Validates the data file's shape: a malformed list must fail the tests and the start, never match nothing. */
export function parsePhraseList(raw: unknown): PhraseList {
  const r = raw as { negation_window_words?: unknown; negations?: unknown; phrases?: unknown };
  const window = r.negation_window_words;
  if (typeof window !== 'number' || !Number.isInteger(window) || window < 0) throw new Error('crisis phrases: negation_window_words');
  if (!Array.isArray(r.negations) || !r.negations.every((n) => typeof n === 'string' && normalizeSpeech(n))) {
    throw new Error('crisis phrases: negations must be words');
  }
  if (!Array.isArray(r.phrases) || r.phrases.length === 0) throw new Error('crisis phrases: no phrases');
  const phrases = r.phrases.map((p: Partial<CrisisPhrase> & { unless_next?: unknown }, i: number) => {
    if (typeof p.text !== 'string' || !normalizeSpeech(p.text)) throw new Error(`crisis phrases: phrase ${i}: text`);
    if (!SAFETY_KINDS.includes(p.kind as SafetyKind)) throw new Error(`crisis phrases: phrase ${i}: kind`);
    if (!SAFETY_SEVERITIES.includes(p.severity as SafetySeverity)) throw new Error(`crisis phrases: phrase ${i}: severity`);
    if (typeof p.negatable !== 'boolean') throw new Error(`crisis phrases: phrase ${i}: negatable`);
    const unlessNext = p.unless_next ?? [];
    if (!Array.isArray(unlessNext) || !unlessNext.every((w) => typeof w === 'string' && normalizeSpeech(w))) {
      throw new Error(`crisis phrases: phrase ${i}: unless_next`);
    }
    return { text: normalizeSpeech(p.text), kind: p.kind!, severity: p.severity!, negatable: p.negatable, unlessNext: unlessNext.map(normalizeSpeech) };
  });
  const negations = [...new Set((r.negations as string[]).map(normalizeSpeech))];
  return { negationWindowWords: window, negations, phrases };
}

export const CRISIS_PHRASES: PhraseList = parsePhraseList(list);

export interface PhraseMatch {
  kind: SafetyKind;
  severity: SafetySeverity;
}

/**
 * The most severe phrase of `phrases` in `transcript` (whole words, case-insensitive), or undefined.
 * Each occurrence of a negatable phrase is skipped when a negation stands in the words just before it.
 * The caller must not log the transcript or the phrase: only kind and severity leave this function.
 */
export function matchCrisisPhrase(transcript: string, phrases: PhraseList = CRISIS_PHRASES): PhraseMatch | undefined {
  const words = normalizeSpeech(transcript).split(' ').filter(Boolean);
  let best: PhraseMatch | undefined;
  for (const p of phrases.phrases) {
    const target = p.text.split(' ');
    for (let i = 0; i + target.length <= words.length; i++) {
      if (!target.every((w, j) => words[i + j] === w)) continue;
      if (p.unlessNext.includes(words[i + target.length])) continue;
      if (p.negatable && negated(words.slice(Math.max(0, i - phrases.negationWindowWords), i), phrases.negations)) continue;
      if (!best || moreSevere(p.severity, best.severity)) best = { kind: p.kind, severity: p.severity };
      break;
    }
  }
  return best;
}

function negated(before: string[], negations: string[]): boolean {
  const text = ` ${before.join(' ')} `;
  return negations.some((n) => text.includes(` ${n} `));
}
