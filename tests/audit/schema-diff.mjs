// Compares two SDL files with @graphql-inspector/core and fails on a breaking change
// that docs/schema-changes.md does not announce (its exact message, anywhere in the file).
//
//   node schema-diff.mjs OLD.graphql NEW.graphql ANNOUNCEMENTS.md
import { readFileSync, existsSync } from "node:fs";
import { buildSchema } from "graphql";
import { diff, CriticalityLevel } from "@graphql-inspector/core";

const [oldPath, newPath, announcedPath] = process.argv.slice(2);
const changes = await diff(
  buildSchema(readFileSync(oldPath, "utf8")),
  buildSchema(readFileSync(newPath, "utf8")),
);
const announced = announcedPath && existsSync(announcedPath) ? readFileSync(announcedPath, "utf8") : "";
let unannounced = 0;
for (const change of changes) {
  const level = change.criticality.level;
  const breaking = level === CriticalityLevel.Breaking;
  const ok = !breaking || announced.includes(change.message);
  if (!ok) unannounced += 1;
  console.log(`${breaking ? (ok ? "BREAKING (announced)" : "BREAKING") : level.padEnd(9)}  ${change.message}`);
}
console.log(`${changes.length} changes, ${unannounced} unannounced breaking`);
process.exit(unannounced === 0 ? 0 : 1);
