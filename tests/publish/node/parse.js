// Parse a podcast feed with podcast-partytime, an independent Podcasting 2.0 parser, and print
// what it read as JSON on stdout; `--categories` prints the Apple category list it ships.
"use strict";

process.env.PARTYTIME_LOG = process.env.PARTYTIME_LOG || "silent";
const fs = require("fs");
const { parseFeed } = require("podcast-partytime");
const { itunesCategoriesSourceOfTruth } = require("podcast-partytime/dist/parser/itunes-categories");

if (process.argv[2] === "--categories") {
  process.stdout.write(JSON.stringify(itunesCategoriesSourceOfTruth));
  process.exit(0);
}
const feed = parseFeed(fs.readFileSync(process.argv[process.argv.length - 1], "utf8"));
if (feed === null) {
  process.stderr.write("podcast-partytime could not parse the feed\n");
  process.exit(1);
}
process.stdout.write(JSON.stringify(feed));
