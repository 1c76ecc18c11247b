# The R packages of jupyter/docker-stacks' r-notebook that Debian 12 has (README: the rest, and
# why) load, and a few of them compute known answers.
packages <- c("tidyverse", "caret", "crayon", "devtools", "e1071", "forecast", "hexbin", "htmltools",
              "htmlwidgets", "randomForest", "RCurl", "rmarkdown", "RODBC", "RSQLite", "shiny",
              "recipes", "rsample", "broom", "modeldata")
for (package in packages) {
  suppressPackageStartupMessages(library(package, character.only = TRUE))
  cat(package, format(packageVersion(package)), "\n")
}
# RSQLite: a round trip through an in-memory database.
db <- DBI::dbConnect(RSQLite::SQLite(), ":memory:")
DBI::dbWriteTable(db, "cars", mtcars)
stopifnot(DBI::dbGetQuery(db, "SELECT COUNT(*) AS n FROM cars")$n == 32)
DBI::dbDisconnect(db)
# broom and recipes on a linear model with a known slope.
fit <- lm(y ~ x, data = data.frame(x = 1:10, y = 2 * (1:10) + 1))
stopifnot(abs(tidy(fit)$estimate[2] - 2) < 1e-9)
prepped <- prep(recipe(mpg ~ wt, data = mtcars) %>% step_normalize(wt))
stopifnot(abs(mean(bake(prepped, new_data = NULL)$wt)) < 1e-9)
# randomForest learns iris well enough.
set.seed(1)
forest <- randomForest(Species ~ ., data = iris, ntree = 50)
stopifnot(mean(predict(forest, iris) == iris$Species) > 0.95)
cat("R packages ok\n")
