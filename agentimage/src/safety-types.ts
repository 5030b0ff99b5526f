// The vocabulary of a safety concern, shared by the model's tool, the phrase backstop, the session
// record (safety_flag), the staff alert and the Go side (shared/sessions SafetyFlag).

/** What the student is at risk of. */
export const SAFETY_KINDS = ['self_harm', 'harm_to_others', 'abuse', 'medical_emergency'] as const;
export type SafetyKind = (typeof SAFETY_KINDS)[number];

/** How acute it is, least to most. */
export const SAFETY_SEVERITIES = ['concern', 'urgent', 'imminent'] as const;
export type SafetySeverity = (typeof SAFETY_SEVERITIES)[number];

/** Who raised it: the model's tool call, or the crisis-phrase backstop on the student's transcript. */
export type SafetySource = 'model' | 'phrase_list';

export interface SafetyConcern {
  kind: SafetyKind;
  severity: SafetySeverity;
  source: SafetySource;
}

export function moreSevere(a: SafetySeverity, b: SafetySeverity): boolean {
  return SAFETY_SEVERITIES.indexOf(a) > SAFETY_SEVERITIES.indexOf(b);
}
