# Golden values for phb_eval/costs.py::cost_effects (tests/test_costs.py).
#
# Regenerate (from the repository root):  Rscript tests/golden/service_use_costs.R
# Writes tests/golden/service_use_costs_data.csv (simulated here with a fixed seed) and
# tests/golden/service_use_costs.json: lm and glm(Gamma(link = "log")) of each cost on phb +
# cost_indirect_pre + age + sex + condition with sandwich::vcovCL(cluster = site, type = "HC1"), and the
# gamma model's g-computation mean difference with its delta-method SE.
suppressPackageStartupMessages({library(sandwich); library(jsonlite)})
here <- "tests/golden"
set.seed(20240526)
n_site <- 14; per_site <- 24; n <- n_site * per_site
site <- sprintf("S%02d", rep(seq_len(n_site), each = per_site))
site_eff <- rnorm(n_site, 0, 0.25)[rep(seq_len(n_site), each = per_site)]
phb <- rep(c(1L, 0L), length.out = n)
age <- round(25 + 60 * runif(n), 1)
sex <- ifelse(runif(n) < 0.5, "female", "male")
condition <- sample(c("chc", "copd", "mental_health"), n, replace = TRUE)
cond_eff <- c(chc = 0.8, copd = 0.1, mental_health = 0)[condition]
cost_indirect_pre <- round(rgamma(n, shape = 1.2, rate = 1.2 / exp(7 + cond_eff + site_eff)), 2)
cost_indirect <- round(rgamma(n, shape = 1.5, rate = 1.5 / exp(6.2 - 0.2 * phb + 0.15 * log(cost_indirect_pre) +
                                                              0.005 * (age - 55) + cond_eff + site_eff)), 2)
cost_direct <- round(ifelse(phb == 1, rgamma(n, 1.1, 1.1 / exp(7.5 + cond_eff)), rgamma(n, 1.1, 1.1 / exp(7.3 + cond_eff))), 2)
cost_direct[sample(which(phb == 0), 10)] <- NA     # controls without a known care-package cost
cost_total <- cost_direct + cost_indirect
data <- data.frame(participant_id = sprintf("C%03d", seq_len(n)), site = site, phb = phb, age = age, sex = sex,
                   condition = condition, cost_indirect_pre = cost_indirect_pre, cost_indirect = cost_indirect,
                   cost_direct = cost_direct, cost_total = cost_total)
write.csv(data, file.path(here, "service_use_costs_data.csv"), row.names = FALSE, na = "")

d0 <- read.csv(file.path(here, "service_use_costs_data.csv"), stringsAsFactors = TRUE)
fit_one <- function(col) {
  d <- d0; d$y <- d[[col]]
  d <- d[complete.cases(d[, c("y", "phb", "cost_indirect_pre", "age", "sex", "condition", "site")]), ]
  f <- y ~ phb + cost_indirect_pre + age + sex + condition
  ols <- lm(f, data = d); Vo <- vcovCL(ols, cluster = ~site, type = "HC1")
  gam <- glm(f, data = d, family = Gamma(link = "log"), control = glm.control(epsilon = 1e-14, maxit = 200))
  Vg <- vcovCL(gam, cluster = ~site, type = "HC1")
  X <- model.matrix(f, d); X1 <- X; X1[, "phb"] <- 1; X0 <- X; X0[, "phb"] <- 0
  m1 <- exp(drop(X1 %*% coef(gam))); m0 <- exp(drop(X0 %*% coef(gam)))
  g <- colMeans(m1 * X1) - colMeans(m0 * X0)
  list(n = nrow(d), ols_coef = unname(coef(ols)["phb"]), ols_se = unname(sqrt(Vo["phb", "phb"])),
       gamma_coef = unname(coef(gam)["phb"]), gamma_se = unname(sqrt(Vg["phb", "phb"])),
       gamma_marginal_diff = mean(m1) - mean(m0), gamma_marginal_diff_se = sqrt(drop(t(g) %*% Vg %*% g)))
}
golden <- list(provenance = list(script = "tests/golden/service_use_costs.R", r = R.version.string,
                                 sandwich = as.character(packageVersion("sandwich"))),
               cost_total = fit_one("cost_total"), cost_direct = fit_one("cost_direct"),
               cost_indirect = fit_one("cost_indirect"))
write_json(golden, file.path(here, "service_use_costs.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE)
