// ----- model -----

/** Progress of long work, emitted by the library and rendered by the CLI (stderr) or ignored. */
export type ProgressEvent =
  | { readonly kind: "stage"; readonly stage: string; readonly total: number }
  | { readonly kind: "tick"; readonly stage: string; readonly done: number; readonly total: number; readonly label?: string }
  | { readonly kind: "log"; readonly message: string }
  /** What the current step is doing, without moving the bar (AWQ's grid search inside a layer). */
  | { readonly kind: "detail"; readonly stage: string; readonly label: string };

export type ProgressSink = (e: ProgressEvent) => void;

export const noProgress: ProgressSink = () => undefined;
