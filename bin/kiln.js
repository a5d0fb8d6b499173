#!/usr/bin/env node
// The `kiln` command line (compile, train, run, inspect) arrives with the compiler.
console.error('kiln: the command line is not built yet (compile/train/run/inspect come with the compiler).');
process.exit(1);
