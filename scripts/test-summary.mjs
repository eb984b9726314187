// Prints one closing line from vitest's JSON report: "tests: N passed, N failed, N skipped".
// Exits 1 when the report is missing, a test failed, or no test ran.
import { existsSync, readFileSync } from "node:fs";

const file = process.argv[2] ?? ".kalman/test-results.json";
if (!existsSync(file)) {
  console.log(`tests: no report at ${file}: the test run did not finish`);
  process.exit(1);
}
const r = JSON.parse(readFileSync(file, "utf8"));
const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
if (r.numFailedTests > 0 || r.numFailedTestSuites > 0 || r.numPassedTests === 0) process.exit(1);
