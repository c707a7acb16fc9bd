#!/usr/bin/env bash
# check-log.sh LOGFILE: look for kernel splats (warnings, BUGs, lockdep, KASAN, hung
# tasks, stalls, panics...) in a dmesg or serial console log. Prints every report with
# a little context and exits 1 if there is one; exits 0 on a clean log, 2 on misuse.
set -euo pipefail

if [ $# -ne 1 ] || [ ! -r "$1" ]; then echo "usage: check-log.sh LOGFILE" >&2; exit 2; fi

# Headers of kernel reports. Kept specific on purpose: the boot log has informational
# lines mentioning kmemleak, KASAN or RCU stall timeouts that are not reports.
splat='WARNING:|BUG:|KASAN|Oops|general protection fault|kernel BUG|'
splat+='possible circular locking|possible recursive locking|inconsistent lock state|'
splat+='INFO: task .* blocked|UBSAN|kmemleak: .*suspected memory leak|'
splat+='RCU stall|detected (expedited )?stall|list_(add|del) corruption|'
splat+='refcount_t:|Kernel panic|Call Trace|bad (pgd|p4d|pud|pmd|pte) '

# Each report is printed from 2 lines before its first match to 20 lines after its last
# one; a match inside a report being printed (e.g. its own "Call Trace") extends it
# instead of starting a new one.
awk -v re="$splat" -v after=20 '
	function flush_before() { if (NR > 2 && NR - 2 > last) print prev2; if (NR > 1 && NR - 1 > last) print prev1 }
	$0 ~ re {
		if (NR > last) { if (found) print "--"; flush_before() }
		found = 1; last = NR + after
	}
	NR <= last { print }
	{ prev2 = prev1; prev1 = $0 }
	END { exit found ? 1 : 0 }
' "$1"
