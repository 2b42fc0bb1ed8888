package main

func init() {
	register(&command{
		name:    "scriptstatus",
		usage:   "scriptstatus [EVENT]",
		summary: "deprecated: event status legacy EVENT (default monitor)",
		multi:   true,
		run: func(e *env, args []string) int {
			if len(args) > 1 {
				return e.usage("scriptstatus")
			}
			return eventStatus(e, args, "scriptstatus")
		},
	})
}
