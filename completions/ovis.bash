# bash completion for ovis
# Model names in the Hugging Face cache (models--ORG--NAME folders), plus the released models.
_ovis_models() {
  local hub="${HF_HUB_CACHE:-${HUGGINGFACE_HUB_CACHE:-${HF_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/huggingface}/hub}}" d names="AIDC-AI/Ovis2.5-2B AIDC-AI/Ovis2.5-9B"
  for d in "${hub}"/models--*--*; do
    [[ -d "${d}" ]] || continue
    d="${d##*/models--}"
    names+=" ${d/--//}"
  done
  printf '%s\n' ${names} | sort -u
}
_ovis() {
  local cur prev words cword
  _init_completion 2>/dev/null || { cur="${COMP_WORDS[COMP_CWORD]}"; prev="${COMP_WORDS[COMP_CWORD-1]}"; }
  local cmds="ask chat pull list ls rm info bench serve data finetune lora completion help"
  local gen_opts="--model --system --think --no-think --think-budget --max-new-tokens --temperature --top-p --top-k --repetition-penalty --seed --min-pixels --max-pixels --frames --max-input-pixels --device --lora --weights --precision --verbose --endpoint --api-key --remote-model --help"
  local ask_opts="${gen_opts} --messages --save --continue --attach --each --format --json --top-logprobs"
  local chat_opts="${gen_opts} --load --save"
  local pull_opts="--all --json --help"
  local list_opts="--json --help"
  local rm_opts="--json --help"
  local info_opts="--model --lora --weights --device --precision --json --verbose --help"
  local check_opts="--format --profile --image-dir --max-length --finetune-pixels --decode --per-sample --json --model --jobs --help"
  local convert_opts="--to --from --image-dir --json --help"
  local finetune_opts="--engine --mode --model --output --max-length --epochs --gpus --swift-version --ovis-repo --run --help"
  local bench_opts="--synthetic --model --lora --weights --quality --device --full --images --prompt-tokens --decode-tokens --repeats --warmup --concurrency --profile --precision --json --help"
  local serve_opts="--host --port --model --device --lora --weights --precision --max-batch --kv-memory --max-queue --api-key --allow-local-files --allow-remote-media --max-media-bytes --max-body-bytes --max-input-pixels --frames --verbose --help"
  if [[ ${COMP_CWORD} -eq 1 ]]; then
    COMPREPLY=($(compgen -W "${cmds} --help --version" -- "${cur}"))
    return
  fi
  case "${prev}" in
    --model|-m) COMPREPLY=($(compgen -d -- "${cur}") $(compgen -W "$(_ovis_models)" -- "${cur}")); return ;;
    --attach|-a|--messages|--save|--continue|--load) COMPREPLY=($(compgen -f -- "${cur}")); return ;;
    --lora) COMPREPLY=($(compgen -d -- "${cur}")); return ;;
    --precision) COMPREPLY=($(compgen -W "f32 bf16" -- "${cur}")); return ;;
    --weights) COMPREPLY=($(compgen -W "bf16 int8 int4" -- "${cur}")); return ;;
    --format|--profile|--to|--from) if [[ ${COMP_WORDS[1]} == data ]]; then COMPREPLY=($(compgen -W "upstream swift" -- "${cur}")); else COMPREPLY=($(compgen -W "json text" -- "${cur}")); fi; return ;;
    --engine) COMPREPLY=($(compgen -W "swift upstream" -- "${cur}")); return ;;
    --mode) COMPREPLY=($(compgen -W "lora full" -- "${cur}")); return ;;
    --swift-version) COMPREPLY=($(compgen -W "3 4" -- "${cur}")); return ;;
    --image-dir|--ovis-repo|--output|-o) COMPREPLY=($(compgen -d -- "${cur}")); return ;;
    --max-length|--epochs|--gpus|--jobs|-j) return ;;
    --device) COMPREPLY=($(compgen -W "auto cpu cuda cuda:0" -- "${cur}")); return ;;
    --synthetic) COMPREPLY=($(compgen -W "2b 9b" -- "${cur}")); return ;;
    --host|--port|-p|--max-batch|--kv-memory|--max-queue|--api-key|--max-media-bytes|--max-body-bytes) return ;;
    --images|--prompt-tokens|--decode-tokens|--repeats|--warmup|--concurrency) return ;;
    --each|--system|-s|--think-budget|--max-new-tokens|-n|--temperature|-t|--top-p|--top-k|--repetition-penalty|--seed|--min-pixels|--max-pixels|--frames|--max-input-pixels|--top-logprobs|--endpoint|--api-key|--remote-model) return ;;
  esac
  case "${COMP_WORDS[1]}" in
    ask) if [[ ${cur} == -* ]]; then COMPREPLY=($(compgen -W "${ask_opts}" -- "${cur}")); else COMPREPLY=($(compgen -f -- "${cur}")); fi ;;
    chat) COMPREPLY=($(compgen -W "${chat_opts}" -- "${cur}")) ;;
    pull) if [[ ${cur} == -* ]]; then COMPREPLY=($(compgen -W "${pull_opts}" -- "${cur}")); else COMPREPLY=($(compgen -W "$(_ovis_models)" -- "${cur}")); fi ;;
    list|ls) COMPREPLY=($(compgen -W "${list_opts}" -- "${cur}")) ;;
    rm) if [[ ${cur} == -* ]]; then COMPREPLY=($(compgen -W "${rm_opts}" -- "${cur}")); else COMPREPLY=($(compgen -W "$(_ovis_models)" -- "${cur}")); fi ;;
    info) COMPREPLY=($(compgen -W "${info_opts}" -- "${cur}")) ;;
    bench) COMPREPLY=($(compgen -W "${bench_opts}" -- "${cur}")) ;;
    data)
      if [[ ${COMP_CWORD} -eq 2 ]]; then COMPREPLY=($(compgen -W "check convert" -- "${cur}"))
      elif [[ ${cur} == -* ]]; then
        if [[ ${COMP_WORDS[2]} == check ]]; then COMPREPLY=($(compgen -W "${check_opts}" -- "${cur}")); else COMPREPLY=($(compgen -W "${convert_opts}" -- "${cur}")); fi
      else COMPREPLY=($(compgen -f -- "${cur}")); fi ;;
    finetune) if [[ ${cur} == -* ]]; then COMPREPLY=($(compgen -W "${finetune_opts}" -- "${cur}")); else COMPREPLY=($(compgen -f -- "${cur}")); fi ;;
    serve) COMPREPLY=($(compgen -W "${serve_opts}" -- "${cur}")) ;;
    lora) if [[ ${COMP_CWORD} -eq 2 ]]; then COMPREPLY=($(compgen -W "merge" -- "${cur}")); else COMPREPLY=($(compgen -d -- "${cur}")); fi ;;
    completion) COMPREPLY=($(compgen -W "bash zsh fish" -- "${cur}")) ;;
  esac
}
complete -F _ovis ovis
