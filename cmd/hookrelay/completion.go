package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"
)

// bashCompletion asks the binary itself for the candidates (urfave/cli's
// --generate-bash-completion), so it follows the commands and flags of the
// installed version.
const bashCompletion = `# bash completion for hookrelay: source it, or save it as
# /etc/bash_completion.d/hookrelay (or ~/.local/share/bash-completion/completions/hookrelay)
_hookrelay_complete() {
  local cur words
  COMPREPLY=()
  cur="${COMP_WORDS[COMP_CWORD]}"
  words=("${COMP_WORDS[@]:0:COMP_CWORD}")
  local opts
  if [[ "$cur" == -* ]]; then
    opts=$("${words[0]}" "${words[@]:1}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${words[0]}" "${words[@]:1}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
  return 0
}
complete -o bashdefault -o default -F _hookrelay_complete hookrelay
`

const zshCompletion = `#compdef hookrelay
# zsh completion for hookrelay: save it as _hookrelay in a directory of $fpath
# (then run compinit), or source it after compinit.
_hookrelay() {
  local -a opts
  local cur=${words[-1]}
  if [[ "$cur" == -* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _hookrelay hookrelay
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "SHELL",
		Description: "Examples:\n" +
			"  source <(hookrelay completion bash)\n" +
			"  hookrelay completion zsh > \"${fpath[1]}/_hookrelay\"\n" +
			"  hookrelay completion fish > ~/.config/fish/completions/hookrelay.fish\n" +
			exitCodes("script printed", "unknown shell"),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return errors.New("completion takes one shell: bash, zsh or fish")
			}
			out := c.App.Writer
			switch sh := c.Args().First(); sh {
			case "bash":
				fmt.Fprint(out, bashCompletion)
			case "zsh":
				fmt.Fprint(out, zshCompletion)
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return fmt.Errorf("fish completion: %w", err)
				}
				fmt.Fprint(out, s)
			default:
				return fmt.Errorf("unknown shell %q: want bash, zsh or fish", sh)
			}
			return nil
		},
	}
}
