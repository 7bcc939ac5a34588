"""How results look to people: progress bars on a terminal and the HTML report."""
