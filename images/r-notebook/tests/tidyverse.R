# The tidyverse core loads and works: a pipeline with known counts, a tidyr reshape, readr,
# stringr, forcats, lubridate, and a ggplot2 plot built (not drawn).
core <- c("ggplot2", "dplyr", "tidyr", "readr", "purrr", "tibble", "stringr", "forcats", "lubridate")
for (package in core) {
  suppressPackageStartupMessages(library(package, character.only = TRUE))
  cat(package, format(packageVersion(package)), "\n")
}
counts <- mtcars %>% count(cyl)
stopifnot(identical(counts$n, c(11L, 7L, 14L)))
wide <- tibble(id = 1:2, a = c(1, 2), b = c(3, 4))
long <- pivot_longer(wide, c(a, b))
stopifnot(nrow(long) == 4, sum(long$value) == 10)
parsed <- read_csv(I("x,y\n1,a\n2,b"), show_col_types = FALSE)
stopifnot(identical(parsed$x, c(1, 2)))
stopifnot(identical(map_dbl(1:3, ~ .x^2), c(1, 4, 9)))
stopifnot(str_detect("tidyverse", "verse"))
stopifnot(identical(levels(fct_infreq(c("b", "a", "b"))), c("b", "a")))
stopifnot(year(ymd("2026-11-21")) == 2026)
plot <- ggplot(mtcars, aes(wt, mpg)) + geom_point()
stopifnot(inherits(ggplot_build(plot), "ggplot_built"))
cat("tidyverse core ok\n")
