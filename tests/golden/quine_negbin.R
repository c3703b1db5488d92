# Golden values for phb_eval.service_use.count_regression on MASS::quine (columns as MASS ships them):
# glm.nb(Days ~ Eth + Sex + Age + Lrn) with cluster-robust errors by a class column (Age x Lrn x Sex,
# 14 clusters of unequal size), CR1 = sandwich::vcovCL(type = "HC1"), CR2 = clubSandwich::vcovCR(type = "CR2")
# with Satterthwaite df (coef_test). Also a Poisson GLM with the same covariances.
# Run from the repository root: Rscript tests/golden/quine_negbin.R
suppressMessages({library(MASS); library(sandwich); library(clubSandwich); library(jsonlite)})
d <- MASS::quine
d$class <- paste(d$Age, d$Lrn, d$Sex, sep = "_")
write.csv(d, "tests/golden/quine.csv", row.names = FALSE)
d <- read.csv("tests/golden/quine.csv", stringsAsFactors = TRUE)
one <- function(fit) {
  cr1 <- vcovCL(fit, cluster = ~class, type = "HC1")
  cr2 <- vcovCR(fit, cluster = d$class, type = "CR2")
  ct <- coef_test(fit, vcov = cr2, test = "Satterthwaite")
  list(coef = as.list(coef(fit)), se_cr1 = as.list(sqrt(diag(cr1))), se_cr2 = as.list(ct$SE),
       df_cr2 = as.list(ct$df_Satt), p_cr2 = as.list(ct$p_Satt))
}
nb <- glm.nb(Days ~ Eth + Sex + Age + Lrn, data = d, control = glm.control(epsilon = 1e-12, maxit = 100))
po <- glm(Days ~ Eth + Sex + Age + Lrn, data = d, family = poisson, control = glm.control(epsilon = 1e-12, maxit = 100))
out <- list(negbin = c(one(nb), theta = nb$theta), poisson = one(po), n_clusters = length(unique(d$class)),
            r_version = R.version.string, sandwich = as.character(packageVersion("sandwich")),
            clubSandwich = as.character(packageVersion("clubSandwich")))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "tests/golden/quine_negbin.json")
