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
complete -c ovis -n __fish_use_subcommand -a completion -d 'print a shell completion script'
complete -c ovis -n '__fish_seen_subcommand_from ask chat info' -s m -l model -r -a '(__ovis_models; __fish_complete_directories)' -d 'model directory or ORG/NAME'
complete -c ovis -n '__fish_seen_subcommand_from ask chat info' -l device -x -a 'auto cpu cuda cuda:0' -d 'where the engine runs'
complete -c ovis -n '__fish_seen_subcommand_from ask info' -l json -d 'write JSON'
complete -c ovis -n '__fish_seen_subcommand_from ask chat info' -s v -l verbose -d 'engine logs and timings'
complete -c ovis -n '__fish_seen_subcommand_from ask chat' -s s -l system -x -d 'system prompt'
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
