// One answer from the engine: plain, or with a thinking budget (two phases on one KV cache).
import type { EngineProcess } from '../engine/engine-process.js';
import { runBudgetedTurn } from './think-budget.js';
import { runTurn, type TurnDetokenizer, type TurnHooks, type TurnRequest, type TurnResult } from './turn.js';

export function runAnswer(engine: EngineProcess, detok: TurnDetokenizer, req: TurnRequest, hooks: TurnHooks, thinkBudget?: number): Promise<TurnResult> {
  return thinkBudget !== undefined ? runBudgetedTurn(engine, detok, req, thinkBudget, hooks) : runTurn(engine, detok, req, hooks);
}
