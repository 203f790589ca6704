"""Customer experience management (issue 15; guide §5, §7.4, §8): customer classes, tags, portraits
and the differentiated service they bring; negative experiences (`negative/`). See agent/experience/README.md."""
