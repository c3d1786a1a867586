import { Tokenizer } from '@huggingface/tokenizers';
import { readFileSync } from 'node:fs';
const d = '/work/main/test/fixtures/tiny-ovis2.5/';
const tok = new Tokenizer(JSON.parse(readFileSync(d+'tokenizer.json','utf8')), JSON.parse(readFileSync(d+'tokenizer_config.json','utf8')));
const {seqs,out} = JSON.parse(readFileSync('/tmp/fz/dec.json','utf8'));
let bad=0;
for (let i=0;i<seqs.length;i++){ for (const [k,skip] of [[0,false],[1,true]]) { let js; try { js = tok.decode(seqs[i],{skip_special_tokens:skip}); } catch(e) { js = 'ERR '+e.message; }
 if (js!==out[i][k]) { bad++; if (bad<=10) console.log(JSON.stringify(seqs[i]), skip, '\n js', JSON.stringify(js), '\n rs', JSON.stringify(out[i][k])); } }}
console.log('mismatch', bad);
