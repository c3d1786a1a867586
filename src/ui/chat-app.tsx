// The chat screen (Ink): the finished transcript in <Static>, then the live turn (thinking rows,
// the answer's last row, the phase of a wait), the input box and the status line. Props in, no
// I/O: the glue (src/cli/chat-ink.tsx) reads keys and owns the controller.
import { useEffect, useState, useSyncExternalStore } from 'react';
import { Box, Static, Text, useCursor } from 'ink';
import type { ChatStore, StaticItem } from './chat-store.js';
import { layoutInput } from './input-layout.js';
import { statusLine, type Entry } from './transcript.js';

export interface Theme {
  color: boolean;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/** Re-renders every `ms` while `on` (the spinner and the elapsed seconds). */
function useTicker(on: boolean, ms = 100): number {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    if (!on) return;
    const t = setInterval(() => setTick((n) => n + 1), ms);
    return () => clearInterval(t);
  }, [on, ms]);
  return tick;
}

function EntryView({ entry, theme }: { entry: Entry; theme: Theme }) {
  const c = theme.color;
  switch (entry.type) {
    case 'banner':
      return (
        <Box flexDirection="column">
          <Text bold wrap="truncate">{entry.title}</Text>
          <Text dimColor={c}>{entry.hint}</Text>
        </Box>
      );
    case 'user':
      return (
        <Box marginTop={1}>
          <Text color={c ? 'cyan' : undefined} bold>{'› '}</Text>
          <Text color={c ? 'cyan' : undefined}>{entry.text}</Text>
        </Box>
      );
    case 'attachment':
      return <Text color={c ? 'green' : undefined}>{`  ↳ ${entry.text}`}</Text>;
    case 'thinking': {
      const size = entry.tokens > 0 ? `${entry.tokens.toLocaleString('en-US')} tokens` : 'saved';
      if (!entry.expanded) return <Text dimColor={c}>{`▸ thought for ${size} · Ctrl+T shows it`}</Text>;
      return (
        <Box flexDirection="column">
          <Text dimColor={c}>{`▾ thinking (${size}) · Ctrl+T folds it`}</Text>
          {entry.text.split('\n').map((line, i) => (
            <Text key={i} dimColor={c}>{`┊ ${line}`}</Text>
          ))}
        </Box>
      );
    }
    case 'answer':
      return <Text>{entry.text}</Text>;
    case 'notice': {
      const color = !c ? undefined : entry.tone === 'error' ? 'red' : entry.tone === 'warn' ? 'yellow' : undefined;
      const text = entry.tone === 'error' ? `error: ${entry.text}` : entry.text;
      return <Text color={color} dimColor={c && entry.tone === 'dim'}>{text}</Text>;
    }
  }
}

function ItemView({ item, theme }: { item: StaticItem; theme: Theme }) {
  return 'row' in item ? <Text>{item.row}</Text> : <EntryView entry={item.entry} theme={theme} />;
}

export function ChatApp({ store, theme }: { store: ChatStore; theme: Theme }) {
  const s = useSyncExternalStore(store.subscribe, store.getSnapshot);
  const waiting = s.phase !== undefined;
  const tick = useTicker(waiting);
  const { setCursorPosition } = useCursor();
  const c = theme.color;
  const width = Math.max(1, s.width);
  // Rows of the live part: it must stay shorter than the terminal, or Ink redraws the whole screen.
  const statusRows = 1;
  const separatorRows = 1;
  const phaseRows = waiting ? 1 : 0;
  const room = Math.max(3, s.height - 1);
  const input = layoutInput(s.editor, width, Math.max(1, Math.min(8, room - statusRows - separatorRows - phaseRows - s.answerRows.length - 1)));
  const thinkingRoom = Math.max(0, room - statusRows - separatorRows - phaseRows - s.answerRows.length - input.rows.length);
  const thinking = s.thinkingRows.slice(s.thinkingRows.length - Math.min(s.thinkingRows.length, thinkingRoom));
  const above = thinking.length + s.answerRows.length + phaseRows + separatorRows;
  useEffect(() => {
    setCursorPosition({ x: input.cursor.col, y: above + input.cursor.row });
  });
  const elapsed = waiting ? `${((performance.now() - s.phaseSince) / 1000).toFixed(1)} s` : '';
  return (
    <>
      <Static key={s.epoch} items={s.items as StaticItem[]}>
        {(item) => <ItemView key={item.key} item={item} theme={theme} />}
      </Static>
      <Box flexDirection="column" width={width}>
        {thinking.map((row, i) => (
          <Text key={`t${i}`} dimColor={c} wrap="truncate">{row}</Text>
        ))}
        {s.answerRows.map((row, i) => (
          <Text key={`a${i}`} wrap="truncate">{row}</Text>
        ))}
        {waiting && <Text wrap="truncate" color={c ? 'yellow' : undefined}>{`${SPINNER[tick % SPINNER.length]} ${s.phase} · ${elapsed}`}</Text>}
        <Text dimColor={c} wrap="truncate">{input.hiddenAbove > 0 ? `${'─'.repeat(Math.max(0, width - 16))} ↑ ${input.hiddenAbove} more` : '─'.repeat(width)}</Text>
        {input.rows.map((row, i) => (
          <Text key={`i${i}`} wrap="truncate" dimColor={c && s.busy}>{row}</Text>
        ))}
        <Text dimColor={c} wrap="truncate">{statusLine(s.status, width)}</Text>
      </Box>
    </>
  );
}
