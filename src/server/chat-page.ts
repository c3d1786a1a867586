// GET /: a page to try the model in a browser. A placeholder for now: the chat page of issue 11,
// item 4, replaces it.
export function chatPageHtml(): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>ovis serve</title></head>
<body>
<h1>ovis serve</h1>
<p>This server speaks the OpenAI chat completions API at <code>/v1/chat/completions</code>.
See <code>/v1/models</code>, <code>/health</code> and <code>/metrics</code>.</p>
</body>
</html>
`;
}
