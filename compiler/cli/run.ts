// Entry point of the CLI when run from the sources (bin/kiln.js spawns it under tsx).
import { main } from './main.js';

process.exitCode = await main(process.argv.slice(2));
