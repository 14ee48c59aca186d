-- CreateIndex
CREATE INDEX "simulation_jobs_owner_id_released_at_idx" ON "simulation_jobs"("owner_id", "released_at");

