"""Customer experience management (guide §5, §8): customer classes, tags, portraits and the
differentiated service they bring. See agent/experience/README.md."""
