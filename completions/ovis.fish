# fish completion for ovis
complete -c ovis -f
# Model names in the Hugging Face cache (models--ORG--NAME folders), plus the released models.
function __ovis_models
    set -l hub $HF_HUB_CACHE
    test -n "$hub"; or set hub $HUGGINGFACE_HUB_CACHE
    if test -z "$hub"
        if test -n "$HF_HOME"
            set hub $HF_HOME/hub
        else if test -n "$XDG_CACHE_HOME"
            set hub $XDG_CACHE_HOME/huggingface/hub
        else
            set hub $HOME/.cache/huggingface/hub
        end
    end
    begin
        printf '%s\n' AIDC-AI/Ovis2.5-2B AIDC-AI/Ovis2.5-9B
        for d in $hub/models--*--*
            test -d $d; and string replace -r '^models--(.*?)--' '$1/' (basename $d)
        end
    end | sort -u
end
complete -c ovis -n __fish_use_subcommand -a ask -d 'answer one prompt'
complete -c ovis -n __fish_use_subcommand -a chat -d 'talk with the model in the terminal'
complete -c ovis -n __fish_use_subcommand -a pull -d 'download a model'
complete -c ovis -n __fish_use_subcommand -a list -d 'list downloaded models'
complete -c ovis -n __fish_use_subcommand -a rm -d 'remove downloaded models'
complete -c ovis -n __fish_use_subcommand -a info -d 'show the model and engine'
complete -c ovis -n '__fish_seen_subcommand_from pull rm' -x -a '(__ovis_models)'
complete -c ovis -n '__fish_seen_subcommand_from pull' -l all -d 'every file of the repository'
complete -c ovis -n '__fish_seen_subcommand_from pull list ls rm' -l json -d 'print JSON'
complete -c ovis -n __fish_use_subcommand -a bench -d 'measure the engine'
complete -c ovis -n '__fish_seen_subcommand_from bench' -l synthetic -x -a '2b 9b' -d 'random weights of a released shape'
complete -c ovis -n '__fish_seen_subcommand_from bench' -s m -l model -r -a '(__ovis_models; __fish_complete_directories)' -d 'model directory or ORG/NAME'
complete -c ovis -n '__fish_seen_subcommand_from bench' -l device -x -a 'auto cpu cuda cuda:0' -d 'where the engine runs'
complete -c ovis -n '__fish_seen_subcommand_from bench' -l full -d 'the complete set on the CPU (slow)'
complete -c ovis -n '__fish_seen_subcommand_from bench' -l images -x -d 'square image sides'
complete -c ovis -n '__fish_seen_subcommand_from bench' -l prompt-tokens -x -d 'prompt length for prefill'
complete -c ovis -n '__fish_seen_subcommand_from bench' -l decode-tokens -x -d 'tokens decoded per repeat'
complete -c ovis -n '__fish_seen_subcommand_from bench' -l repeats -x -d 'timed runs per figure'
complete -c ovis -n '__fish_seen_subcommand_from bench' -l warmup -x -d 'untimed runs first'
complete -c ovis -n '__fish_seen_subcommand_from bench' -l concurrency -x -d 'streams decoding together, e.g. 1,2,4,8'
complete -c ovis -n '__fish_seen_subcommand_from bench' -l profile -d 'time each stage of one CPU pass'
complete -c ovis -n '__fish_seen_subcommand_from bench' -l json -d 'print JSON'
complete -c ovis -n __fish_use_subcommand -a serve -d 'serve the model over an OpenAI-compatible HTTP API'
complete -c ovis -n '__fish_seen_subcommand_from serve' -l host -x -d 'address to listen on'
complete -c ovis -n '__fish_seen_subcommand_from serve' -s p -l port -x -d 'port to listen on; 0 picks a free one'
complete -c ovis -n '__fish_seen_subcommand_from serve' -s m -l model -r -a '(__ovis_models; __fish_complete_directories)' -d 'model directory or ORG/NAME'
complete -c ovis -n '__fish_seen_subcommand_from serve' -l device -x -a 'auto cpu cuda cuda:0' -d 'where the engine runs'
complete -c ovis -n '__fish_seen_subcommand_from serve' -l lora -r -a '(__fish_complete_directories)' -d 'LoRA adapter directory merged at load'
complete -c ovis -n '__fish_seen_subcommand_from serve' -l max-batch -x -d 'completions generated together'
complete -c ovis -n '__fish_seen_subcommand_from serve' -l kv-memory -x -d 'what the KV caches may hold, e.g. 4G'
complete -c ovis -n '__fish_seen_subcommand_from serve' -l max-queue -x -d 'completions waiting beyond --max-batch'
complete -c ovis -n '__fish_seen_subcommand_from serve' -l api-key -x -d 'require this bearer key on /v1'
complete -c ovis -n '__fish_seen_subcommand_from serve' -l allow-local-files -d 'accept file:// media URLs'
complete -c ovis -n '__fish_seen_subcommand_from serve' -l allow-remote-media -d 'accept http(s) media URLs'
complete -c ovis -n '__fish_seen_subcommand_from serve' -l max-media-bytes -x -d 'largest image or video, bytes'
complete -c ovis -n '__fish_seen_subcommand_from serve' -l max-body-bytes -x -d 'largest request body, bytes'
complete -c ovis -n '__fish_seen_subcommand_from serve' -l max-input-pixels -x -d 'largest decoded image, pixels'
complete -c ovis -n '__fish_seen_subcommand_from serve' -l frames -x -d 'frames sampled from a video'
complete -c ovis -n '__fish_seen_subcommand_from serve' -s v -l verbose -d 'show engine logs'
complete -c ovis -n __fish_use_subcommand -a completion -d 'print a shell completion script'
complete -c ovis -n '__fish_seen_subcommand_from ask chat info' -s m -l model -r -a '(__ovis_models; __fish_complete_directories)' -d 'model directory or ORG/NAME'
complete -c ovis -n '__fish_seen_subcommand_from ask chat info bench' -l lora -x -a '(__fish_complete_directories)' -d 'LoRA adapter directory merged at load'
complete -c ovis -n '__fish_seen_subcommand_from ask chat info bench serve' -l weights -x -a 'bf16 int8 int4' -d 'how the decoder weights are held (int8/int4: quantized at load, CPU)'
complete -c ovis -n '__fish_seen_subcommand_from bench' -l quality -d 'quantized decoder against bf16 instead of speed'
complete -c ovis -n __fish_use_subcommand -a lora -d 'work with LoRA adapters'
complete -c ovis -n '__fish_seen_subcommand_from lora; and not __fish_seen_subcommand_from merge' -x -a merge -d 'write a model with the adapter merged'
complete -c ovis -n '__fish_seen_subcommand_from ask chat info' -l device -x -a 'auto cpu cuda cuda:0' -d 'where the engine runs'
complete -c ovis -n '__fish_seen_subcommand_from ask info' -l json -d 'write JSON'
complete -c ovis -n '__fish_seen_subcommand_from ask chat info' -s v -l verbose -d 'engine logs and timings'
complete -c ovis -n '__fish_seen_subcommand_from ask chat' -s s -l system -x -d 'system prompt'
complete -c ovis -n '__fish_seen_subcommand_from ask chat' -l endpoint -x -d 'an OpenAI-compatible server URL'
complete -c ovis -n '__fish_seen_subcommand_from ask chat' -l api-key -x -d 'API key for --endpoint'
complete -c ovis -n '__fish_seen_subcommand_from ask chat' -l remote-model -x -d 'the model on the --endpoint server'
complete -c ovis -n '__fish_seen_subcommand_from ask' -l messages -r -F -d 'earlier turns as OpenAI-style JSON'
complete -c ovis -n '__fish_seen_subcommand_from ask chat' -l think -d 'let the model think first'
complete -c ovis -n '__fish_seen_subcommand_from ask chat' -l no-think -d 'answer directly'
complete -c ovis -n '__fish_seen_subcommand_from ask chat' -l think-budget -x -d 'think at most n tokens, then answer'
complete -c ovis -n '__fish_seen_subcommand_from ask chat' -s n -l max-new-tokens -x -d 'most tokens the model generates per answer'
complete -c ovis -n '__fish_seen_subcommand_from ask chat' -s t -l temperature -x -d 'sampling temperature, 0 = greedy'
complete -c ovis -n '__fish_seen_subcommand_from ask chat' -l top-p -x -d 'nucleus sampling threshold'
complete -c ovis -n '__fish_seen_subcommand_from ask chat' -l top-k -x -d 'keep the k most likely tokens'
complete -c ovis -n '__fish_seen_subcommand_from ask chat' -l repetition-penalty -x -d 'penalise generated tokens'
complete -c ovis -n '__fish_seen_subcommand_from ask chat' -l seed -x -d 'random seed'
complete -c ovis -n '__fish_seen_subcommand_from ask' -s a -l attach -r -F -d 'attach an image or video'
complete -c ovis -n '__fish_seen_subcommand_from ask chat' -l min-pixels -x -d 'smallest resized image area'
complete -c ovis -n '__fish_seen_subcommand_from ask chat' -l max-pixels -x -d 'largest resized image area'
complete -c ovis -n '__fish_seen_subcommand_from ask chat' -l frames -x -d 'frames sampled from a video'
complete -c ovis -n '__fish_seen_subcommand_from ask chat' -l max-input-pixels -x -d 'refuse larger decoded images'
complete -c ovis -n '__fish_seen_subcommand_from ask' -l top-logprobs -x -d 'most likely tokens per step, with --json'
complete -c ovis -n '__fish_seen_subcommand_from ask' -l save -r -F -d 'write the conversation with this answer to a file'
complete -c ovis -n '__fish_seen_subcommand_from ask' -l continue -r -F -d 'read a conversation file, add this turn, write it back'
complete -c ovis -n '__fish_seen_subcommand_from ask' -l each -x -d 'answer this prompt for every file given'
complete -c ovis -n '__fish_seen_subcommand_from ask' -l format -x -a 'json text' -d 'output of --each'
complete -c ovis -n '__fish_seen_subcommand_from chat' -l load -r -F -d 'continue a saved conversation'
complete -c ovis -n '__fish_seen_subcommand_from chat' -l save -r -F -d 'keep the conversation in a file'
complete -c ovis -n '__fish_seen_subcommand_from ask' -F
complete -c ovis -n '__fish_seen_subcommand_from completion' -x -a 'bash zsh fish'
complete -c ovis -n __fish_use_subcommand -a data -d 'check and convert fine-tuning datasets'
complete -c ovis -n __fish_use_subcommand -a finetune -d 'print or run a training command'
complete -c ovis -n '__fish_seen_subcommand_from data; and not __fish_seen_subcommand_from check convert' -a check -d 'validate a training set and count its tokens'
complete -c ovis -n '__fish_seen_subcommand_from data; and not __fish_seen_subcommand_from check convert' -a convert -d 'convert between ms-swift and upstream formats'
complete -c ovis -n '__fish_seen_subcommand_from check convert finetune' -F
complete -c ovis -n '__fish_seen_subcommand_from check' -l format -x -a 'upstream swift' -d 'the file format'
complete -c ovis -n '__fish_seen_subcommand_from check' -l profile -x -a 'upstream swift' -d 'whose rules to count with'
complete -c ovis -n '__fish_seen_subcommand_from check convert' -l image-dir -x -a '(__fish_complete_directories)' -d 'media folder'
complete -c ovis -n '__fish_seen_subcommand_from check finetune' -l max-length -x -d 'longest sample in ids'
complete -c ovis -n '__fish_seen_subcommand_from check' -l finetune-pixels -d 'pixel settings of ovis finetune'
complete -c ovis -n '__fish_seen_subcommand_from check' -l decode -d 'decode every image fully'
complete -c ovis -n '__fish_seen_subcommand_from check' -l per-sample -d 'token counts per sample'
complete -c ovis -n '__fish_seen_subcommand_from check convert' -l json -d 'write JSON lines'
complete -c ovis -n '__fish_seen_subcommand_from check finetune' -s m -l model -r -a '(__ovis_models; __fish_complete_directories)' -d 'model directory or ORG/NAME'
complete -c ovis -n '__fish_seen_subcommand_from check' -s j -l jobs -x -d 'worker threads'
complete -c ovis -n '__fish_seen_subcommand_from convert' -l to -x -a 'upstream swift' -d 'format to write'
complete -c ovis -n '__fish_seen_subcommand_from convert' -l from -x -a 'upstream swift' -d 'the input format'
complete -c ovis -n '__fish_seen_subcommand_from finetune' -l engine -x -a 'swift upstream' -d 'trainer'
complete -c ovis -n '__fish_seen_subcommand_from finetune' -l mode -x -a 'lora full' -d 'LoRA or full fine-tuning'
complete -c ovis -n '__fish_seen_subcommand_from finetune' -s o -l output -x -a '(__fish_complete_directories)' -d 'checkpoint folder'
complete -c ovis -n '__fish_seen_subcommand_from finetune' -l epochs -x -d 'training epochs'
complete -c ovis -n '__fish_seen_subcommand_from finetune' -l gpus -x -d 'GPUs to train on'
complete -c ovis -n '__fish_seen_subcommand_from finetune' -l swift-version -x -a '3 4' -d 'ms-swift major version'
complete -c ovis -n '__fish_seen_subcommand_from finetune' -l ovis-repo -x -a '(__fish_complete_directories)' -d 'AIDC-AI/Ovis checkout'
complete -c ovis -n '__fish_seen_subcommand_from finetune' -l run -d 'run the command'
