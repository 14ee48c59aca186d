/** The five temporal modes a run can follow. */
export const TEMPORAL_MODES = ["FORWARD", "PORTAL", "BRANCHING", "DIRECTORIAL", "CYCLICAL"] as const;
export type TemporalMode = (typeof TEMPORAL_MODES)[number];

export const EXPORT_FORMATS = ["json", "markdown", "pdf"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** What a worker hands the engine: the job row's resolved request. */
export interface SimulationSpec {
  jobId: string;
  /** Catalog id (`showcase/board_meeting`), or null for description-only jobs. */
  templateId: string | null;
  description: string | null;
  entityCount: number;
  timepointCount: number;
  temporalMode: TemporalMode;
  /** Validated request config; `seed` (int >= 0) makes the run reproducible. */
  config: Record<string, unknown>;
  generateSummaries: boolean;
  exportFormats: ExportFormat[];
}

/** Cumulative figures after a step; reported after every step. */
export interface StepReport {
  step: number;
  totalSteps: number;
  /** Short human label of what the step did, e.g. `timepoint 2/3`. */
  label: string;
  /** Spending of this run so far, integer micro-dollars. */
  costMicros: number;
  tokens: number;
}

export interface RunContext {
  /**
   * Called at every step boundary, after the step's report. Resolves true when the
   * run must stop (cancel, fail-fast, budget): the engine then returns `interrupted`
   * without starting another step.
   */
  shouldStop(): Promise<boolean>;
  /** Called after every step with cumulative spending. */
  onStep(report: StepReport): Promise<void>;
  /** Extra pause per step standing in for model latency (SIM_STEP_MS). */
  stepDelayMs: number;
}

export interface ExportFile {
  format: ExportFormat;
  contentType: string;
  content: Buffer;
}

export interface SimulationResultPayload {
  entities: unknown[];
  timepoints: unknown[];
  relationships: unknown[];
  summary: string | null;
  convergence_score: number | null;
  robustness_grade: string | null;
  [extra: string]: unknown;
}

export type RunOutcome =
  | { kind: "completed"; steps: number; costMicros: number; tokens: number; result: SimulationResultPayload }
  | { kind: "failed"; steps: number; costMicros: number; tokens: number; errorMessage: string }
  | { kind: "interrupted"; steps: number; costMicros: number; tokens: number };

export interface SimulationEngine {
  readonly name: string;
  run(spec: SimulationSpec, ctx: RunContext): Promise<RunOutcome>;
}
