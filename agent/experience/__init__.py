"""Customer experience management (issue 15, guide §5, §7.4, §8): who the customer is and how they fare."""
